/*
 * Writing a seal: walk the token directory once, hash every file, record
 * every attribute of every object file by its exact stored encoding, MAC the
 * canonical text and write the result atomically (docs/seal.md).
 *
 * The manifest is written as it is made, never held whole: a tree of it
 * took 583 MB at 9,600 objects. Every entry is emitted in canonical form
 * (keys sorted, no whitespace, canon.c's escaping), so the MAC can be
 * computed over the text itself, with a newline between entries that the
 * MAC skips (a raw newline never occurs inside a JSON string: it is escaped
 * as \u000a). The canonical order puts "files" before "objects", but both
 * come from one pass over the directory: the object entries, the bulk, go
 * straight to the temporary file; the file list, the token section and
 * token.object's entry (small) are kept in memory and written after them.
 * The MAC then reads the objects back from the temporary file in canonical
 * order, and the "mac" member ends the file.
 *
 * The same text can be made in memory instead: MAC'd for a backup's archive
 * (tfs_seal_stream_mem), or without a MAC and with key material's stored
 * bytes for diff, which parses it into the records it compares
 * (tfs_seal_build). One encoder serves all three.
 */
#include "seal/seal_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/cursor.h"
#include "core/error_internal.h"
#include "tokenfs/names.h"

/* Seals up to this size are read back and loaded before they replace the
 * old one, as a later check will read them (the tests' seals are all
 * smaller); a larger one would need its json-c tree, about ten times its
 * size, which is what streaming avoids. */
#define READ_BACK_MAX (1024u * 1024)

/* Where text goes: the temporary file (through buf) or a text in memory.
 * Every byte of the manifest's output counts against the seal's size cap. */
typedef struct sink {
	tfs_atomic *file;      /* NULL: mem */
	tfs_seal_strbuf *mem;
	char buf[1 << 16];
	size_t len;
	uint64_t *total;       /* bytes of the output so far; NULL for the parts
	                        * kept in memory, which count when they are copied
	                        * to the output, and for a manifest with no cap */
	uint64_t pos;          /* bytes emitted, buffered ones included */
	bool with_secrets;     /* key material's stored bytes too (diff, in memory) */
	int rc;                /* first failure */
	tfs_error *err;
} sink;

static void flush(sink *s)
{
	if (s->file == NULL || s->len == 0 || s->rc != TFS_OK)
		return;
	s->rc = tfs_atomic_write(s->file, (const uint8_t *)s->buf, s->len, s->err);
	s->len = 0;
}

static void emit(sink *s, const char *p, size_t n)
{
	if (s->rc != TFS_OK)
		return;
	if (s->total != NULL && (*s->total += n) > TFS_SEAL_MAX_SIZE) {
		s->rc = tfs_error_set(s->err, TFS_E_LIMIT, TFS_NO_OFFSET,
		                      "the manifest would be over the %u-byte cap of a seal",
		                      TFS_SEAL_MAX_SIZE);
		return;
	}
	s->pos += n;
	if (s->file == NULL) {
		tfs_seal_sb_add(s->mem, p, n);
		if (s->mem->failed)
			s->rc = tfs_nomem(s->err);
		return;
	}
	while (n > 0 && s->rc == TFS_OK) {
		if (s->len == sizeof(s->buf))
			flush(s);
		size_t k = sizeof(s->buf) - s->len < n ? sizeof(s->buf) - s->len : n;
		memcpy(s->buf + s->len, p, k);
		s->len += k;
		p += k;
		n -= k;
	}
}

#define LIT(s, lit) emit((s), (lit), sizeof(lit) - 1)

/* A string as canon.c writes it: '"' and '\\' escaped, bytes below 0x20 as
 * \u00xx, everything else as is. */
static void str(sink *s, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	LIT(s, "\"");
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		emit(s, p + run, i - run);
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			emit(s, esc, 2);
		} else {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			emit(s, u, 6);
		}
		run = i + 1;
	}
	emit(s, p + run, n - run);
	LIT(s, "\"");
}

static void cstr(sink *s, const char *p) { str(s, p, strlen(p)); }

/* `"key":`, with the comma before it unless it is the first member. */
static void member(sink *s, const char *k, bool first)
{
	if (!first)
		LIT(s, ",");
	cstr(s, k);
	LIT(s, ":");
}

static void u64(sink *s, uint64_t v)
{
	char d[24];
	int n = snprintf(d, sizeof(d), "%llu", (unsigned long long)v);
	emit(s, d, (size_t)n);
}

/* Bytes as a lowercase hex string, in pieces. */
static void hex(sink *s, const uint8_t *p, size_t n)
{
	char chunk[2 * 4096 + 1];
	LIT(s, "\"");
	while (n > 0 && s->rc == TFS_OK) {
		size_t k = n < 4096 ? n : 4096;
		tfs_seal_hex(chunk, p, k);
		emit(s, chunk, 2 * k);
		p += k;
		n -= k;
	}
	LIT(s, "\"");
}

/* Labels and serials are informative copies: printable ASCII only, so the
 * JSON text never depends on how a parser treats invalid UTF-8. */
static void safe_string(sink *s, const char *p)
{
	char buf[64];
	size_t n = 0;
	for (; p[n] != '\0' && n < sizeof(buf) - 1; n++)
		buf[n] = (p[n] >= 0x20 && p[n] < 0x7f) ? p[n] : '?';
	str(s, buf, n);
}

static void mode_string(sink *s, uint32_t mode)
{
	char buf[16];
	snprintf(buf, sizeof(buf), "%04o", (unsigned)(mode & 07777));
	cstr(s, buf);
}

static bool is_pin_blob(uint64_t type)
{
	return type == TFS_CKA_OS_SOPIN || type == TFS_CKA_OS_USERPIN;
}

/* Whether a is an attribute map (CKA_WRAP_TEMPLATE and the like) with a
 * non-empty key value among its entries, which are never encrypted. */
static bool map_holds_key(const tfs_attr *a)
{
	if (tfs_attr_kind(a) != TFS_KIND_MAP)
		return false;
	for (size_t i = 0; i < tfs_attr_map_count(a); i++) {
		const tfs_attr *e = tfs_attr_map_entry(a, i);
		size_t n = 0;
		if (tfs_attr_kind(e) == TFS_KIND_BYTES && tfs_attr_bytes(e, &n) != NULL && n > 0 &&
		    tfs_is_key_material(0x4 /* CKO_SECRET_KEY */, tfs_attr_type(e)))
			return true;
	}
	return false;
}

/* One attribute, its stored bytes data[off, end); keys in canonical order:
 * encrypted, fingerprint, kind, name, redacted, sha256, size, type, value. */
static int attr_entry(sink *s, const tfs_vtoken *vt, const tfs_object *obj, bool is_token,
                      const tfs_attr *a, const uint8_t *data, uint64_t off, uint64_t end,
                      tfs_error *err)
{
	uint64_t type = tfs_attr_type(a);
	uint8_t md[32];
	int rc = tfs_sha256(md, data + off, (size_t)(end - off), err);
	if (rc != TFS_OK)
		return rc;
	bool bytes = tfs_attr_kind(a) == TFS_KIND_BYTES;
	bool encrypted = bytes && !is_token && tfs_object_attr_encrypted(obj, a);
	const char *redacted = NULL;
	bool value = true; /* the stored bytes are recorded */
	char fp[TFS_FINGERPRINT_LEN] = "";
	if (bytes && is_token && is_pin_blob(type)) {
		redacted = "pin-blob";
		value = false;
	} else if (bytes && !is_token && tfs_object_attr_is_key_material(obj, a)) {
		redacted = "key-material";
		value = s->with_secrets; /* only in a manifest that stays in memory */
		uint64_t key_type = UINT64_MAX;
		const tfs_attr *k = tfs_object_find(obj, 0x100 /* CKA_KEY_TYPE */);
		if (k != NULL && tfs_attr_kind(k) == TFS_KIND_ULONG)
			key_type = tfs_attr_ulong(k);
		size_t len;
		const uint8_t *p = tfs_attr_bytes(a, &len);
		uint8_t *pt = NULL;
		size_t pt_len = 0;
		tfs_layout layout;
		bool known = !encrypted;
		if (encrypted && vt->key != NULL &&
		    tfs_token_key_decrypt(vt->key, &pt, &pt_len, &layout, p, len, NULL) == TFS_OK) {
			p = pt;
			len = pt_len;
			known = true;
		}
		/* no plaintext, no fingerprint */
		if (known)
			rc = tfs_key_fingerprint(fp, key_type, type, p, len, err);
		tfs_secure_free(pt, pt_len);
		if (rc != TFS_OK)
			return rc;
	} else if (map_holds_key(a)) {
		/* A template's key value is a key: the seal keeps its hash only. */
		redacted = "key-material";
		value = false;
	}
	char nb[24];
	LIT(s, "{");
	bool first = true;
	if (encrypted) {
		member(s, "encrypted", first);
		LIT(s, "true");
		first = false;
	}
	if (fp[0] != '\0') {
		member(s, "fingerprint", first);
		cstr(s, fp);
		first = false;
	}
	member(s, "kind", first);
	u64(s, (uint64_t)tfs_attr_kind(a));
	member(s, "name", false);
	cstr(s, tfs_vattr_name(type, nb));
	if (redacted != NULL) {
		member(s, "redacted", false);
		cstr(s, redacted);
	}
	member(s, "sha256", false);
	hex(s, md, sizeof(md));
	member(s, "size", false);
	u64(s, end - off);
	member(s, "type", false);
	u64(s, type);
	if (value) {
		/* Everything after type and kind, as stored: ciphertext stays ciphertext. */
		member(s, "value", false);
		hex(s, data + off + 16, (size_t)(end - off - 16));
	}
	LIT(s, "}");
	return s->rc;
}

/* The record of one object file, or a record saying it did not parse; keys
 * in canonical order: attributes, error, file, generation, uuid. */
static int object_entry(sink *s, const tfs_vtoken *vt, const char *name, const uint8_t *data,
                        size_t size, tfs_error *err)
{
	bool is_token = strcmp(name, "token.object") == 0;
	tfs_object *obj = NULL;
	tfs_error pe;
	int rc = tfs_object_parse(&obj, data, size, &pe);
	if (rc == TFS_E_NOMEM)
		return tfs_nomem(err);
	LIT(s, "{");
	member(s, "attributes", true);
	if (rc != TFS_OK) {
		char msg[600];
		if (pe.offset != TFS_NO_OFFSET)
			snprintf(msg, sizeof(msg), "offset %llu: %s", (unsigned long long)pe.offset, pe.what);
		else
			snprintf(msg, sizeof(msg), "%s", pe.what);
		LIT(s, "null");
		member(s, "error", false);
		cstr(s, msg);
		rc = TFS_OK; /* an object that does not parse is sealed as it is, with why */
	} else {
		LIT(s, "[");
		size_t n = tfs_object_attr_count(obj);
		for (size_t k = 0; k < n && rc == TFS_OK; k++) {
			const tfs_attr *a = tfs_object_attr(obj, k);
			uint64_t end = k + 1 < n ? tfs_attr_offset(tfs_object_attr(obj, k + 1)) : size;
			if (k > 0)
				LIT(s, ",");
			rc = attr_entry(s, vt, obj, is_token, a, data, tfs_attr_offset(a), end, err);
		}
		LIT(s, "]");
	}
	member(s, "file", false);
	cstr(s, name);
	if (obj != NULL) {
		member(s, "generation", false);
		u64(s, tfs_object_generation(obj));
	}
	if (!is_token) {
		member(s, "uuid", false);
		str(s, name, strlen(name) - strlen(".object"));
	}
	LIT(s, "}");
	tfs_object_free(obj);
	return rc != TFS_OK ? rc : s->rc;
}

static void created_string(char buf[32])
{
	time_t now = time(NULL);
	struct tm tm;
	if (gmtime_r(&now, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(buf, "unknown");
}

/* ---- the MAC, over the canonical text: every byte but newlines ---- */

static int mac_begin(EVP_MAC_CTX **out, const tfs_token_key *key,
                     const uint8_t salt[TFS_SEAL_SALT_LEN], tfs_error *err)
{
	*out = NULL;
	uint8_t k[32];
	static const char info[] = TFS_SEAL_INFO;
	int rc = tfs_seal_hkdf(k, sizeof(k), tfs_token_key_bytes(key), TFS_KEY_LEN, salt,
	                       TFS_SEAL_SALT_LEN, (const uint8_t *)info, sizeof(info) - 1, err);
	if (rc != TFS_OK)
		return rc;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	bool ok = ctx != NULL && EVP_MAC_init(ctx, k, sizeof(k), params) == 1;
	OPENSSL_cleanse(k, sizeof(k));
	EVP_MAC_free(mac);
	if (!ok) {
		EVP_MAC_CTX_free(ctx);
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "HMAC-SHA256 failed");
	}
	*out = ctx;
	return TFS_OK;
}

static bool mac_feed(EVP_MAC_CTX *ctx, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl != NULL ? (size_t)(nl - p) : n;
		if (k > 0 && EVP_MAC_update(ctx, (const unsigned char *)p, k) != 1)
			return false;
		if (nl == NULL)
			break;
		p += k + 1;
		n -= k + 1;
	}
	return true;
}

#define MAC_LIT(ctx, lit) mac_feed((ctx), (lit), sizeof(lit) - 1)

/* Feeds bytes [from, to) of the output: the temporary file, or the text. */
static bool mac_output(EVP_MAC_CTX *ctx, const sink *out, uint64_t from, uint64_t to)
{
	if (out->file == NULL)
		return mac_feed(ctx, out->mem->p + from, (size_t)(to - from));
	int fd = out->file->fd;
	char buf[1 << 16];
	while (from < to) {
		size_t want = to - from < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)from);
		if (n <= 0 || !mac_feed(ctx, buf, (size_t)n))
			return false;
		from += (uint64_t)n;
	}
	return true;
}

/* ---- the whole manifest ---- */

typedef struct parts {
	tfs_seal_strbuf files, token, tokobj; /* canonical texts kept for the MAC */
	bool has_tokobj;
	char created[32];
	char salt_hex[2 * TFS_SEAL_SALT_LEN + 1];
	uint64_t obj_from, obj_to;            /* the objects array in the file */
} parts;

/* One pass over the directory: object entries to the file (f), file entries
 * and token.object's entry to memory. */
static int walk(sink *f, parts *p, const tfs_vtoken *vt, const tfs_seal_dir *d,
                size_t *nobjs, tfs_error *err)
{
	sink fl = {.mem = &p->files, .err = err};
	sink tk = {.mem = &p->tokobj, .with_secrets = f->with_secrets, .err = err};
	int rc = TFS_OK;
	LIT(&fl, "[");
	for (size_t i = 0; i < d->count && rc == TFS_OK; i++) {
		const tfs_dirent *ent = &d->ents[i];
		if (i > 0)
			LIT(&fl, ",\n");
		/* counter, mode, name, sha256, size, type */
		LIT(&fl, "{");
		uint8_t *data = NULL;
		size_t size = 0;
		uint8_t md[32];
		bool file = ent->st.type == TFS_ENT_FILE;
		if (file) {
			rc = tfs_seal_dir_read(vt, d, ent->name, &data, &size, err);
			if (rc == TFS_OK)
				rc = tfs_sha256(md, data, size, err);
			if (rc != TFS_OK) {
				free(data);
				break;
			}
		}
		bool first = true;
		/* The token's change counter, as read here, for a readable check. */
		if (file && strcmp(ent->name, "generation") == 0 && size == 8) {
			member(&fl, "counter", true);
			u64(&fl, tfs_be64(data));
			first = false;
		}
		member(&fl, "mode", first);
		mode_string(&fl, ent->st.mode);
		member(&fl, "name", false);
		cstr(&fl, ent->name);
		if (file) {
			member(&fl, "sha256", false);
			hex(&fl, md, sizeof(md));
		}
		member(&fl, "size", false);
		u64(&fl, file ? size : ent->st.size);
		member(&fl, "type", false);
		cstr(&fl, tfs_seal_ent_type_name(ent->st.type));
		LIT(&fl, "}");
		if (file && tfs_seal_is_object_file(ent->name)) {
			if (strcmp(ent->name, "token.object") == 0) {
				p->tokobj.len = 0;
				tk.rc = TFS_OK;
				rc = object_entry(&tk, vt, ent->name, data, size, err);
				p->has_tokobj = rc == TFS_OK;
			} else {
				if (*nobjs > 0)
					LIT(f, ",\n");
				rc = object_entry(f, vt, ent->name, data, size, err);
				++*nobjs;
			}
		}
		free(data);
		if (rc == TFS_OK)
			rc = fl.rc != TFS_OK ? fl.rc : f->rc;
	}
	LIT(&fl, "]");
	if (rc == TFS_OK)
		rc = fl.rc;
	return rc;
}

static int compute_mac(char mac_hex[2 * TFS_SEAL_MAC_LEN + 1], const parts *p,
                       const tfs_token_key *key, const uint8_t salt[TFS_SEAL_SALT_LEN],
                       const sink *out, tfs_error *err)
{
	EVP_MAC_CTX *ctx = NULL;
	int rc = mac_begin(&ctx, key, salt, err);
	if (rc != TFS_OK)
		return rc;
	const char *tokobj = p->has_tokobj ? p->tokobj.p : "null";
	size_t tokobj_len = p->has_tokobj ? p->tokobj.len : 4;
	uint8_t mac[TFS_SEAL_MAC_LEN];
	size_t n = 0;
	bool ok = MAC_LIT(ctx, "{\"created\":") && mac_feed(ctx, "\"", 1) &&
	          mac_feed(ctx, p->created, strlen(p->created)) && mac_feed(ctx, "\"", 1) &&
	          MAC_LIT(ctx, ",\"files\":") && mac_feed(ctx, p->files.p, p->files.len) &&
	          MAC_LIT(ctx, ",\"format\":\"" TFS_SEAL_FORMAT "\",\"objects\":") &&
	          mac_output(ctx, out, p->obj_from, p->obj_to) &&
	          MAC_LIT(ctx, ",\"salt\":\"") && mac_feed(ctx, p->salt_hex, strlen(p->salt_hex)) &&
	          MAC_LIT(ctx, "\",\"token\":") && mac_feed(ctx, p->token.p, p->token.len) &&
	          MAC_LIT(ctx, ",\"token_object\":") && mac_feed(ctx, tokobj, tokobj_len) &&
	          MAC_LIT(ctx, ",\"version\":1}") &&
	          EVP_MAC_final(ctx, mac, &n, sizeof(mac)) == 1 && n == sizeof(mac);
	EVP_MAC_CTX_free(ctx);
	if (!ok)
		return tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET,
		                     "HMAC-SHA256 of the manifest failed (or reading it back)");
	tfs_seal_hex(mac_hex, mac, sizeof(mac));
	return TFS_OK;
}

_Static_assert(TFS_SEAL_VERSION == 1, "the MAC text above spells the version");

/* What is written must verify exactly as a later check will read it. */
static int load_back(const uint8_t *text, size_t size, const tfs_token_key *key, tfs_error *err)
{
	tfs_seal_manifest m;
	tfs_seal_load_status st;
	tfs_error e;
	int rc = tfs_seal_manifest_load(&m, &st, key, text, size, &e);
	tfs_seal_manifest_free(&m);
	if (rc != TFS_OK)
		*err = e;
	else if (st != TFS_SEAL_LOADED)
		rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                   "internal: the new seal does not read back: %s", e.what);
	return rc;
}

/* A seal in memory is read back whole, as before streaming; one in the
 * temporary file only up to READ_BACK_MAX. */
static int read_back(const sink *out, const tfs_token_key *key, tfs_error *err)
{
	if (out->file == NULL)
		return load_back((const uint8_t *)out->mem->p, out->mem->len, key, err);
	uint64_t size = out->pos;
	if (size > READ_BACK_MAX)
		return TFS_OK;
	uint8_t *text = malloc((size_t)size + 1);
	if (text == NULL)
		return tfs_nomem(err);
	uint64_t got = 0;
	while (got < size) {
		ssize_t n = pread(out->file->fd, text + got, (size_t)(size - got), (off_t)got);
		if (n <= 0)
			break;
		got += (uint64_t)n;
	}
	int rc = got == size ? load_back(text, (size_t)size, key, err)
	                     : tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET,
	                                     "cannot read the new seal back");
	free(text);
	return rc;
}

/*
 * The manifest of vt's token, listed as d, into *out (the temporary file or
 * a text): with key (a seal) MAC'd and read back; with key NULL (diff's
 * manifest in memory) neither. The listing is made before a temporary file
 * exists beside the seal, so the seal never records its own.
 */
static int emit_manifest(sink *out, const tfs_vtoken *vt, const tfs_token_key *key,
                         const tfs_seal_dir *dir, size_t *nobjs, tfs_error *err)
{
	sink *f = out;
	const tfs_seal_dir d = *dir;
	*nobjs = 0;
	parts p = {0};
	uint8_t salt[TFS_SEAL_SALT_LEN];
	int rc = TFS_OK;
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		rc = tfs_error_set(err, TFS_E_CRYPTO, TFS_NO_OFFSET, "RAND_bytes failed");
		goto done;
	}
	tfs_seal_hex(p.salt_hex, salt, sizeof(salt));
	created_string(p.created);

	/* token: dir, label, mode, serial */
	sink tk = {.mem = &p.token, .err = err};
	LIT(&tk, "{\"dir\":");
	safe_string(&tk, tfs_token_dirname(vt->tok));
	LIT(&tk, ",\"label\":");
	safe_string(&tk, tfs_token_label(vt->tok));
	LIT(&tk, ",\"mode\":");
	mode_string(&tk, d.mode);
	LIT(&tk, ",\"serial\":");
	safe_string(&tk, tfs_token_serial(vt->tok));
	LIT(&tk, "}");
	rc = tk.rc;

	/* The file: people read the header first, the MAC reads in canonical
	 * order. */
	if (rc == TFS_OK) {
		LIT(f, "{\"format\":\"" TFS_SEAL_FORMAT "\",\"version\":1,\"created\":");
		cstr(f, p.created);
		LIT(f, ",\"salt\":");
		cstr(f, p.salt_hex);
		LIT(f, ",\n\"token\":");
		emit(f, p.token.p, p.token.len);
		LIT(f, ",\n\"objects\":");
		p.obj_from = f->pos;
		LIT(f, "[\n");
		rc = walk(f, &p, vt, &d, nobjs, err);
	}
	if (rc == TFS_OK) {
		LIT(f, "]");
		p.obj_to = f->pos;
		LIT(f, ",\n\"token_object\":");
		if (p.has_tokobj)
			emit(f, p.tokobj.p, p.tokobj.len);
		else
			LIT(f, "null");
		LIT(f, ",\n\"files\":[\n");
		emit(f, p.files.p + 1, p.files.len - 1); /* after its "[" */
		flush(f);
		rc = f->rc;
	}
	char mac_hex[2 * TFS_SEAL_MAC_LEN + 1];
	if (rc == TFS_OK && key != NULL)
		rc = compute_mac(mac_hex, &p, key, salt, f, err);
	if (rc == TFS_OK) {
		if (key != NULL) {
			LIT(f, ",\n\"mac\":");
			cstr(f, mac_hex);
		}
		LIT(f, "}\n");
		flush(f);
		rc = f->rc;
	}
	if (rc == TFS_OK && key != NULL)
		rc = read_back(f, key, err);
done:
	free(p.files.p);
	free(p.token.p);
	if (p.tokobj.p != NULL)
		OPENSSL_cleanse(p.tokobj.p, p.tokobj.cap);
	free(p.tokobj.p);
	return rc;
}

int tfs_seal_stream(const tfs_vtoken *vt, const char *seal_path, size_t *nfiles, size_t *nobjs,
                    tfs_error *err)
{
	*nfiles = *nobjs = 0;
	uint64_t total = 0;
	tfs_atomic file;
	tfs_seal_dir d;
	int rc = tfs_seal_dir_list(&d, vt, seal_path, err);
	if (rc != TFS_OK)
		return rc;
	*nfiles = d.count;
	if ((rc = tfs_atomic_begin(&file, seal_path, 0600, true, err)) != TFS_OK) {
		tfs_seal_dir_free(&d);
		return rc;
	}
	sink *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		rc = tfs_nomem(err);
	} else {
		*f = (sink){.file = &file, .total = &total, .err = err};
		rc = emit_manifest(f, vt, vt->key, &d, nobjs, err);
	}
	if (rc == TFS_OK)
		rc = tfs_atomic_commit(&file, err);
	else
		tfs_atomic_abort(&file);
	free(f);
	tfs_seal_dir_free(&d);
	return rc;
}

/* The manifest of vt's token as text in *text: total counts its bytes
 * against the cap (NULL: no cap), key decrypts values (NULL: as stored). */
static int manifest_text(tfs_seal_strbuf *text, const tfs_vtoken *vt, const tfs_token_key *key,
                         const char *seal_path, uint64_t *total, bool with_secrets,
                         size_t *nfiles, size_t *nobjs, tfs_error *err)
{
	sink *f = calloc(1, sizeof(*f)); /* its buffer is 64 KiB: not on the stack */
	if (f == NULL)
		return tfs_nomem(err);
	*f = (sink){.mem = text, .total = total, .with_secrets = with_secrets, .err = err};
	tfs_seal_dir d;
	int rc = tfs_seal_dir_list(&d, vt, seal_path, err);
	if (rc == TFS_OK) {
		*nfiles = d.count;
		rc = emit_manifest(f, vt, key, &d, nobjs, err);
		tfs_seal_dir_free(&d);
	}
	free(f);
	return rc;
}

int tfs_seal_stream_mem(char **out, size_t *len, const tfs_vtoken *vt, const char *seal_path,
                        size_t *nfiles, size_t *nobjs, tfs_error *err)
{
	*out = NULL;
	*len = 0;
	*nfiles = *nobjs = 0;
	uint64_t total = 0;
	tfs_seal_strbuf text = {0};
	int rc = manifest_text(&text, vt, vt->key, seal_path, &total, false, nfiles, nobjs, err);
	if (rc != TFS_OK) {
		free(text.p);
		return rc;
	}
	*out = text.p;
	*len = text.len;
	return TFS_OK;
}

int tfs_seal_build(json_object **out, size_t *nfiles, size_t *nobjs, tfs_vtoken *vt,
                   const char *seal_path, bool with_secrets, tfs_error *err)
{
	*out = NULL;
	*nfiles = *nobjs = 0;
	tfs_seal_strbuf text = {0};
	/* No cap: this manifest is never written. */
	int rc = manifest_text(&text, vt, NULL, seal_path, NULL, with_secrets, nfiles, nobjs, err);
	json_tokener *tk = rc == TFS_OK ? json_tokener_new() : NULL;
	if (rc == TFS_OK && tk == NULL)
		rc = tfs_nomem(err);
	json_object *root = NULL;
	/* In pieces: json-c takes an int length. */
	for (size_t at = 0; rc == TFS_OK && at < text.len && root == NULL;) {
		size_t k = text.len - at < (1u << 30) ? text.len - at : (1u << 30);
		root = json_tokener_parse_ex(tk, text.p + at, (int)k);
		enum json_tokener_error je = json_tokener_get_error(tk);
		at += k;
		if (root == NULL && je != json_tokener_continue)
			rc = tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET,
			                   "internal: the manifest does not parse: %s",
			                   json_tokener_error_desc(je));
	}
	if (rc == TFS_OK && root == NULL)
		rc = tfs_error_set(err, TFS_E_FORMAT, TFS_NO_OFFSET, "internal: the manifest is cut");
	json_tokener_free(tk);
	if (text.p != NULL)
		OPENSSL_cleanse(text.p, text.cap); /* may hold key material's stored bytes */
	free(text.p);
	if (rc != TFS_OK) {
		json_object_put(root);
		return rc;
	}
	*out = root;
	return TFS_OK;
}
