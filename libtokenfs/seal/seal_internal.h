/*
 * Sealed manifests (docs/seal.md): a JSON record of every file of a token
 * directory and every attribute of every object, authenticated with
 * HMAC-SHA256 under a key derived from the token key. manifest.c writes
 * one, load.c reads and authenticates one, check.c and diff.c compare a
 * token with it, canon.c holds the canonical form and the crypto.
 */
#ifndef TFS_SEAL_INTERNAL_H
#define TFS_SEAL_INTERNAL_H

#include <json-c/json.h>

#include "crypto/digest_internal.h"
#include "store/fs_internal.h"
#include "store/store_internal.h"
#include "verify/verify_internal.h"

#define TFS_SEAL_FORMAT "tokenfs-seal"
#define TFS_SEAL_VERSION 1
#define TFS_SEAL_INFO "tokenfs seal v1" /* HKDF info */
#define TFS_SEAL_SALT_LEN 32
#define TFS_SEAL_MAC_LEN 32
#define TFS_SEAL_MAX_SIZE (256u * 1024 * 1024) /* bytes in a seal file */
#define TFS_SEAL_DEFAULT_NAME "tokenfs.seal"
/* A generation that rose by more than this since sealing did not get there
 * by SoftHSM's increments of one per write. */
#define TFS_SEAL_MAX_BUMP (UINT64_C(1) << 20)

/* The PIN-failure bits of CK_TOKEN_INFO.flags SoftHSM changes in use:
 * CKF_{USER,SO}_PIN_{COUNT_LOW,FINAL_TRY,LOCKED}. */
#define TFS_SEAL_PIN_FLAGS UINT64_C(0x770000)

/* ---- canon.c: hex, canonical JSON, HKDF, HMAC ---- */

void tfs_seal_hex(char *out, const uint8_t *p, size_t n); /* out: 2n + 1 bytes */
/* Decodes exactly `cap` bytes of lowercase or uppercase hex; false otherwise. */
bool tfs_seal_unhex_exact(uint8_t *out, size_t cap, const char *hex, size_t hex_len);

/*
 * The canonical text of a manifest: `root` without its top-level "mac"
 * member, keys sorted bytewise at every level, no whitespace, integers in
 * decimal, strings escaped minimally (docs/seal.md). Doubles are refused
 * (TFS_E_FORMAT). *out is malloc'd and NUL-terminated.
 */
int tfs_seal_canonical(char **out, size_t *len, json_object *root, tfs_error *err);

/* HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF. */
int tfs_seal_hkdf(uint8_t *out, size_t out_len, const uint8_t *ikm, size_t ikm_len,
                  const uint8_t *salt, size_t salt_len, const uint8_t *info, size_t info_len,
                  tfs_error *err);
/* HMAC-SHA256 through OpenSSL's EVP_MAC. */
int tfs_seal_hmac(uint8_t out[TFS_SEAL_MAC_LEN], const uint8_t *key, size_t key_len,
                  const uint8_t *msg, size_t msg_len, tfs_error *err);
/* The manifest MAC: HMAC-SHA256(HKDF(token key, salt, TFS_SEAL_INFO), text).
 * The derived key is wiped. */
int tfs_seal_mac(uint8_t out[TFS_SEAL_MAC_LEN], const tfs_token_key *key,
                 const uint8_t salt[TFS_SEAL_SALT_LEN], const char *text, size_t len,
                 tfs_error *err);

/* ---- scan.c: the token directory as it is now ---- */

typedef struct tfs_seal_dir {
	char *path;          /* the token directory */
	tfs_dirent *ents;    /* sorted by name, the seal itself left out */
	size_t count;
	uint32_t mode;       /* of the directory */
} tfs_seal_dir;

/* Lists vt's token directory through the store's file system, leaving out
 * tokenfs.seal and the seal at seal_path when it lives in the directory. */
int tfs_seal_dir_list(tfs_seal_dir *out, const tfs_vtoken *vt, const char *seal_path,
                      tfs_error *err);
void tfs_seal_dir_free(tfs_seal_dir *d);
/* Reads one entry under SoftHSM's read lock; *data is malloc'd. */
int tfs_seal_dir_read(const tfs_vtoken *vt, const tfs_seal_dir *d, const char *name,
                      uint8_t **data, size_t *size, tfs_error *err);
/* "token.object" or a SoftHSM object file name. */
bool tfs_seal_is_object_file(const char *name);
const char *tfs_seal_ent_type_name(tfs_ent_type t);
/* Reads a whole file of the real file system (O_NOFOLLOW), at most cap bytes. */
int tfs_seal_read_file(const char *path, size_t cap, uint8_t **data, size_t *size,
                       tfs_error *err);

/* ---- load.c: a seal, parsed, authenticated and validated ---- */

typedef struct tfs_seal_attr {
	uint64_t type;
	uint64_t kind;
	uint64_t size;             /* bytes of type, kind and value on disk */
	uint8_t sha256[32];        /* of those bytes */
	/* The stored value as a one-attribute object file (a zero generation,
	 * then type, kind and value exactly as on disk), or NULL when the seal
	 * holds only the hash. */
	uint8_t *record;
	size_t record_len;
	bool encrypted;            /* a byte string stored as ciphertext */
	const char *redacted;      /* NULL, "key-material" or "pin-blob" */
	const char *fingerprint;   /* of redacted key material, or NULL */
} tfs_seal_attr;

typedef struct tfs_seal_object {
	const char *file;
	const char *uuid;          /* NULL for token.object */
	bool parsed;               /* false: the file did not parse when sealed */
	uint64_t generation;
	tfs_seal_attr *attrs;
	size_t nattrs;
} tfs_seal_object;

typedef struct tfs_seal_file {
	const char *name;
	tfs_ent_type type;
	uint64_t size;
	uint32_t mode;
	bool has_sha256;
	uint8_t sha256[32];
	const tfs_seal_object *obj; /* for object files that were parsed */
	size_t index;               /* in the manifest's "files" array */
} tfs_seal_file;

typedef struct tfs_seal_manifest {
	json_object *root;         /* owns every string below */
	const char *created;
	const char *label;
	const char *serial;
	uint32_t dir_mode;
	bool has_generation;       /* the generation file's counter, when 8 bytes */
	uint64_t generation;
	tfs_seal_file *files;      /* sorted by name */
	size_t nfiles;
	tfs_seal_object token;     /* token.object; token.file NULL when absent */
	tfs_seal_object *objs;
	size_t nobjs;
} tfs_seal_manifest;

typedef enum tfs_seal_load_status {
	TFS_SEAL_LOADED = 0,
	TFS_SEAL_MALFORMED,        /* not a tokenfs seal: why is in err */
	TFS_SEAL_BAD_MAC           /* a seal, but not one made with this token key */
} tfs_seal_load_status;

/*
 * Parses text, verifies its MAC with key and only then reads the rest into
 * *m. Returns TFS_OK with *status saying what was found (err->what says why
 * for MALFORMED and BAD_MAC), or a fatal error (TFS_E_NOMEM, TFS_E_CRYPTO).
 * tfs_seal_manifest_free releases *m in every case.
 */
int tfs_seal_manifest_load(tfs_seal_manifest *m, tfs_seal_load_status *status,
                           const tfs_token_key *key, const uint8_t *text, size_t len,
                           tfs_error *err);
void tfs_seal_manifest_free(tfs_seal_manifest *m);

/* ---- manifest.c: building one ---- */

/* Writes the manifest of vt's token as it is now, MAC included, to
 * seal_path (atomically), as it is made: memory does not grow with the
 * objects. *nfiles and *nobjs say how many entries it has. */
int tfs_seal_stream(const tfs_vtoken *vt, const char *seal_path, size_t *nfiles, size_t *nobjs,
                    tfs_error *err);
/* The same text, MAC'd and read back, in memory (*out malloc'd): what a
 * backup puts into its archive. seal_path: where it will live, or NULL. */
int tfs_seal_stream_mem(char **out, size_t *len, const tfs_vtoken *vt, const char *seal_path,
                        size_t *nfiles, size_t *nobjs, tfs_error *err);
/* The manifest of vt's token as it is now, without its MAC, as a json-c
 * tree (the same encoder, parsed). with_secrets also records key material's
 * stored bytes: only for manifests that stay in memory (diff), never for one
 * that is written. */
int tfs_seal_build(json_object **out, size_t *nfiles, size_t *nobjs, tfs_vtoken *vt,
                   const char *seal_path, bool with_secrets, tfs_error *err);
/* Reads the records of a manifest this process built (no MAC to check):
 * takes ownership of root. TFS_E_FORMAT means a bug. */
int tfs_seal_manifest_adopt(tfs_seal_manifest *m, json_object *root, tfs_error *err);

/* ---- compare.c: a token directory against a manifest ---- */

/* How to compare, and what came of it. */
typedef struct tfs_seal_cmp {
	const tfs_token_key *old_key; /* decrypts the manifest's values; NULL: none */
	bool reveal;                  /* key material in full (diff --reveal) */
	bool diff;                    /* words for two states, not for a seal */
	size_t errors, infos;         /* findings added, by severity */
} tfs_seal_cmp;

/*
 * Compares vt's token directory as it is now with manifest m and adds a
 * finding (seal.* codes, docs/seal.md) for every difference to vt->findings.
 * The one comparison of --check-seal and of tokenfs diff. seal_path: the
 * seal's own file, left out of the listing (NULL: only tokenfs.seal is).
 * Errors only for what stops it (TFS_E_NOMEM, TFS_E_LOCKED, listing I/O).
 */
int tfs_seal_compare(tfs_seal_cmp *opt, tfs_vtoken *vt, const tfs_seal_manifest *m,
                     const char *seal_path, tfs_error *err);

/* ---- diff.c: one object file against its recorded state ---- */

/* Reports how object file `name` (current bytes data/size) differs from its
 * recorded state `so` (NULL when the manifest has none). Returns the number
 * of findings added through *added; TFS_E_NOMEM is the only error. */
int tfs_seal_diff_object(tfs_vtoken *vt, const char *dir, const char *name,
                         const tfs_seal_object *so, const uint8_t *data, size_t size,
                         const tfs_seal_cmp *opt, size_t *added);
/* One line describing a new object file (class, label) for seal.file-added. */
char *tfs_seal_describe_object(const tfs_vtoken *vt, const uint8_t *data, size_t size);

/* ---- render.c: values for messages ---- */

typedef struct tfs_seal_strbuf {
	char *p;
	size_t len;
	size_t cap;
	bool failed; /* out of memory: the text is cut */
} tfs_seal_strbuf;

void tfs_seal_sb_add(tfs_seal_strbuf *b, const char *s, size_t n);
void tfs_seal_sb_printf(tfs_seal_strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* What is known of one side of an attribute comparison. */
typedef struct tfs_seal_view {
	const tfs_attr *a;         /* the parsed attribute, NULL when absent */
	bool encrypted;
	const char *redacted;      /* as in tfs_seal_attr */
	const char *fingerprint;
	const uint8_t *sha256;     /* for redacted values */
	bool reveal;               /* key material in full (diff --reveal) */
} tfs_seal_view;

/* Appends a readable rendering of v: plaintext (decrypted with key when
 * needed), never key material or a PIN blob. */
void tfs_seal_render(tfs_seal_strbuf *b, const tfs_seal_view *v, const tfs_token_key *key);
/* "+CKF_X -CKF_Y" for two flag words. */
void tfs_seal_render_flag_diff(tfs_seal_strbuf *b, uint64_t before, uint64_t after);

#endif
