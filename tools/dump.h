/*
 * The dump command walks stores and hands what it reads to one renderer
 * (text, JSON). Renderers only format: they never read files, decrypt or
 * decide what is wrong; the walk gives them a view of every value.
 */
#ifndef TFS_TOOLS_DUMP_H
#define TFS_TOOLS_DUMP_H

#include <stdio.h>

#include "cli.h"
#include "tokenfs/tokenfs.h"

/* How one top-level byte string is to be shown. */
typedef struct dump_value {
	const uint8_t *bytes; /* what to show: the plaintext when decrypted */
	size_t len;
	bool encrypted;       /* stored as ciphertext */
	bool decrypted;       /* bytes are the decrypted plaintext */
	bool redacted;        /* key material: show len and fingerprint only */
	bool text;            /* a text attribute (dump_attr_is_text) holding text: shown as text */
	tfs_layout layout;    /* of a decrypted value */
	char fingerprint[TFS_FINGERPRINT_LEN]; /* of redacted values */
	const char *error;    /* why decryption failed, else NULL */
	char *error_line;     /* ...in full for stderr, without the path: "offset N: ..." */
	tfs_decoded *decoded; /* DER and dates made readable, or NULL */
	char *decode_error;   /* why a value meant to be DER did not decode */
	struct dump_value *entries; /* of an attribute map: one view per entry, else NULL */
} dump_value;

/*
 * The views of obj's attributes (*out, one per attribute; free with
 * dump_free_views): ciphertext decrypted with key (may be NULL), key
 * material redacted unless reveal, whether it is stored encrypted or not.
 * Prints nothing, so that it can run on the loader's step thread: a value
 * that does not decrypt gets an error_line, which dump_report_views prints.
 * Returns an exit status.
 */
int dump_make_views(dump_value **out, const tfs_object *obj, const tfs_token_key *key,
                    bool reveal);
/* The views' error lines on stderr, each naming path. */
void dump_report_views(const dump_value *views, const tfs_object *obj, const char *path);
void dump_free_views(dump_value *views, const tfs_object *obj);

/* Whether an attribute type holds text (CKA_LABEL, CKA_APPLICATION,
 * CKA_URL, dates, the token label); every other byte string is binary and
 * shown in hex even when its bytes happen to be printable. */
bool dump_attr_is_text(uint64_t type);

/* One key (private key, public key and certificate with the same CKA_ID
 * and the same public key) as the library pairs them (tokenfs/pairing.h). */
typedef tfs_key_pair dump_key;

/* What the walk learnt about a token's keys. */
typedef struct dump_token_info {
	cli_blob_use so, user;    /* what the PINs given did with each blob */
	const uint8_t *token_key; /* the 32 key bytes, only with --reveal */
	const char *uri;          /* PKCS#11 URI (tokenfs/uri.h), NULL without token.object */
} dump_token_info;

typedef struct dump_sink dump_sink;

struct dump_sink {
	FILE *out;
	bool first_token;  /* renderer state for separators */
	bool first_object;
	bool brief;        /* text: summaries only */
	/* Set by the walk for each object callback: its PKCS#11 URI, or NULL
	 * and why there is none (object_uri_unknown, NULL for an unreadable file). */
	const char *object_uri;
	const char *object_uri_unknown;
	void (*token_begin)(dump_sink *s, const tfs_token *tok, const dump_token_info *info);
	/* obj is NULL when the file could not be parsed; err then says why.
	 * values[k] describes obj's k-th attribute when it is a byte string. */
	void (*object)(dump_sink *s, const tfs_token *tok, size_t i, const tfs_object *obj,
	               const dump_value *values, const char *summary, const tfs_error *err);
	void (*token_end)(dump_sink *s, const tfs_token *tok, const dump_key *keys, size_t nkeys);
	void (*finish)(dump_sink *s);
};

/* brief: one summary line per object and the key list, no attributes. */
void dump_text_init(dump_sink *s, FILE *out, bool brief);
void dump_json_init(dump_sink *s, FILE *out);

/* The value of a ulong attribute with its symbolic name where it has one:
 * "CKO_SECRET_KEY" or NULL. */
const char *dump_ulong_name(uint64_t attr_type, uint64_t value);

#endif
