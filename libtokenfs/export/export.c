/*
 * tokenfs export's engine (tokenfs/export.h): plan every file in memory,
 * then write. A token's objects are all read and decrypted first, so that
 * keys are paired exactly as dump pairs them (tokenfs/pairing.h) and each
 * private key can be checked against its public key and certificate
 * before anything is encoded.
 */
#include "export/export_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#include "core/error_internal.h"
#include "tokenfs/names.h"
#include "tokenfs/pairing.h"

/* ---- objects in plaintext ---- */

const uint8_t *tfs_xobj_bytes(const tfs_xobj *o, uint64_t type, size_t *len, bool *locked)
{
	*len = 0;
	if (locked != NULL)
		*locked = false;
	for (size_t k = tfs_object_attr_count(o->obj); k-- > 0;) {
		const tfs_attr *a = tfs_object_attr(o->obj, k);
		if (tfs_attr_type(a) != type)
			continue;
		if (tfs_attr_kind(a) != TFS_KIND_BYTES)
			return NULL;
		if (!o->known[k]) {
			if (locked != NULL)
				*locked = true;
			return NULL;
		}
		if (o->plain[k] != NULL) {
			*len = o->plain_len[k];
			return o->plain[k];
		}
		return tfs_attr_bytes(a, len);
	}
	return NULL;
}

bool tfs_xobj_bool(const tfs_xobj *o, uint64_t type, bool absent)
{
	const tfs_attr *a = tfs_object_find(o->obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_BOOL ? tfs_attr_bool(a) : absent;
}

static uint64_t ulong_of(const tfs_object *obj, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : UINT64_MAX;
}

static void xobj_clear(tfs_xobj *o)
{
	if (o->obj != NULL)
		for (size_t k = 0; k < tfs_object_attr_count(o->obj); k++)
			tfs_secure_free(o->plain[k], o->plain_len[k]);
	free(o->plain);
	free(o->plain_len);
	free(o->known);
	tfs_object_free(o->obj);
	memset(o, 0, sizeof(*o));
}

/* Decrypts what key can decrypt; a value that does not decrypt stays
 * unknown (and so fails the key that needs it, by name). */
static int xobj_load(tfs_xobj *o, const tfs_token *tok, size_t i, const tfs_token_key *key,
                     tfs_error *err)
{
	memset(o, 0, sizeof(*o));
	o->uuid = tfs_token_object_uuid(tok, i);
	int rc = tfs_token_load_object(&o->obj, tok, i, err);
	if (rc != TFS_OK)
		return rc;
	size_t n = tfs_object_attr_count(o->obj) + 1;
	o->plain = calloc(n, sizeof(*o->plain));
	o->plain_len = calloc(n, sizeof(*o->plain_len));
	o->known = calloc(n, sizeof(*o->known));
	if (o->plain == NULL || o->plain_len == NULL || o->known == NULL)
		return tfs_nomem(err);
	o->cls = ulong_of(o->obj, CKA_CLASS);
	o->key_type = ulong_of(o->obj, CKA_KEY_TYPE);
	o->cert_type = ulong_of(o->obj, CKA_CERTIFICATE_TYPE);
	for (size_t k = 0; k + 1 < n; k++) {
		const tfs_attr *a = tfs_object_attr(o->obj, k);
		if (!tfs_object_attr_encrypted(o->obj, a)) {
			o->known[k] = true;
			continue;
		}
		if (key == NULL)
			continue;
		size_t ct_len;
		const uint8_t *ct = tfs_attr_bytes(a, &ct_len);
		tfs_layout layout;
		tfs_error derr;
		if (tfs_token_key_decrypt(key, &o->plain[k], &o->plain_len[k], &layout, ct, ct_len,
		                          &derr) == TFS_OK)
			o->known[k] = true;
	}
	return TFS_OK;
}

/* ---- the export ---- */

int tfs_export_new(tfs_export **out, const tfs_export_options *opts, tfs_error *err)
{
	*out = NULL;
	tfs_export *ex = calloc(1, sizeof(*ex));
	if (ex == NULL)
		return tfs_nomem(err);
	ex->opts = *opts;
	ex->nsel = opts->nuuids + opts->nids + opts->nlabels;
	ex->used_sel = calloc(ex->nsel + 1, sizeof(*ex->used_sel));
	int rc = ex->used_sel != NULL ? TFS_OK : tfs_nomem(err);
	if (rc == TFS_OK && (unsigned)opts->secret_format > TFS_SECRET_JWK)
		rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "unknown secret-key format %d",
		                   (int)opts->secret_format);
	if (rc == TFS_OK && opts->passphrase != NULL) {
		if (memchr(opts->passphrase, '\0', opts->passphrase_len) != NULL)
			rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			                   "the passphrase contains a NUL byte, which PKCS#12 cannot hold");
		else if ((ex->p12_pass_buf = malloc(opts->passphrase_len + 1)) == NULL)
			rc = tfs_nomem(err);
		else {
			memcpy(ex->p12_pass_buf, opts->passphrase, opts->passphrase_len);
			ex->p12_pass_buf[opts->passphrase_len] = '\0';
			ex->p12_pass = ex->p12_pass_buf;
		}
	}
	if (rc == TFS_OK && opts->pkcs12_file != NULL)
		rc = tfs_xcheck_pkcs12_path(opts->pkcs12_file, err);
	if (rc == TFS_OK && opts->pkcs12_file != NULL) {
		if (opts->passphrase == NULL)
			rc = tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
			                   "a PKCS#12 bundle needs a passphrase");
		else
			rc = tfs_xp12_new(&ex->p12, err);
	}
	if (rc != TFS_OK) {
		tfs_export_free(ex);
		return rc;
	}
	*out = ex;
	return TFS_OK;
}

static void rec_free(tfs_xrec *r)
{
	if (r == NULL)
		return;
	free(r->file);
	free(r->token_label);
	free(r->token_serial);
	free(r->object_uuid);
	free(r->label);
	tfs_xbuf_free(&r->data);
	free(r);
}

void tfs_export_free(tfs_export *ex)
{
	if (ex == NULL)
		return;
	for (size_t i = 0; i < ex->n; i++)
		rec_free(ex->recs[i]);
	free(ex->recs);
	free(ex->used_sel);
	tfs_xp12_free(ex->p12);
	for (size_t i = 0; i < ex->ntoken_dirs; i++)
		free(ex->token_dirs[i]);
	free(ex->token_dirs);
	if (ex->p12_pass_buf != NULL)
		tfs_secure_free(ex->p12_pass_buf, ex->opts.passphrase_len + 1);
	free(ex);
}

size_t tfs_export_count(const tfs_export *ex)
{
	return ex->n;
}

const tfs_export_item *tfs_export_item_at(const tfs_export *ex, size_t i)
{
	if (i >= ex->n)
		return NULL;
	tfs_xrec *r = ex->recs[i];
	tfs_export_item *p = &r->pub;
	p->file = r->file;
	p->token_label = r->token_label != NULL ? r->token_label : "";
	p->token_serial = r->token_serial != NULL ? r->token_serial : "";
	p->object_uuid = r->object_uuid;
	p->label = r->label != NULL ? r->label : "";
	p->id = r->id;
	p->key_type = r->key_type;
	p->fingerprint = r->fingerprint;
	p->file_sha256 = r->file_sha256;
	p->reason = r->reason;
	return p;
}

/* The selector at index s of the uuids, ids, labels sequence. */
static const char *selector(const tfs_export *ex, size_t s)
{
	const tfs_export_options *op = &ex->opts;
	if (s < op->nuuids)
		return op->uuids[s];
	s -= op->nuuids;
	return s < op->nids ? op->ids[s] : op->labels[s - op->nids];
}

size_t tfs_export_unmatched_count(const tfs_export *ex)
{
	size_t n = 0;
	for (size_t s = 0; s < ex->nsel; s++)
		n += !ex->used_sel[s];
	return n;
}

const char *tfs_export_unmatched(const tfs_export *ex, size_t i)
{
	for (size_t s = 0; s < ex->nsel; s++)
		if (!ex->used_sel[s] && i-- == 0)
			return selector(ex, s);
	return NULL;
}

tfs_xrec *tfs_xrec_add(tfs_export *ex, const tfs_token *tok, const tfs_xobj *o, const char *kind,
                    tfs_error *err)
{
	if (ex->n == ex->cap) {
		size_t ncap = ex->cap ? 2 * ex->cap : 16;
		tfs_xrec **p = realloc(ex->recs, ncap * sizeof(*p));
		if (p == NULL)
			return tfs_nomem(err), NULL;
		ex->recs = p;
		ex->cap = ncap;
	}
	tfs_xrec *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return tfs_nomem(err), NULL;
	r->pub.kind = kind;
	if (tok != NULL) {
		r->token_label = strdup(tfs_token_label(tok));
		r->token_serial = strdup(tfs_token_serial(tok));
	}
	if (o != NULL)
		r->object_uuid = strdup(o->uuid);
	if ((tok != NULL && (r->token_label == NULL || r->token_serial == NULL)) ||
	    (o != NULL && r->object_uuid == NULL)) {
		rec_free(r);
		return tfs_nomem(err), NULL;
	}
	ex->recs[ex->n++] = r;
	return r;
}

__attribute__((format(printf, 3, 4))) static void set_status(tfs_xrec *r, tfs_export_status st,
                                                              const char *fmt, ...)
{
	va_list ap;
	r->pub.status = st;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

/* ---- selection ---- */

/* With selectors, what any of them names (of any class: a data object
 * named explicitly is reported, not ignored); without, every key and
 * certificate. */
static bool selected(tfs_export *ex, const tfs_xobj *o, const char *id_hex, const char *label)
{
	const tfs_export_options *op = &ex->opts;
	bool any = false;
	size_t s = 0;
	for (size_t i = 0; i < op->nuuids; i++, s++)
		if (strcmp(op->uuids[i], o->uuid) == 0)
			any = ex->used_sel[s] = true;
	for (size_t i = 0; i < op->nids; i++, s++)
		if (id_hex[0] != '\0' && strcasecmp(op->ids[i], id_hex) == 0)
			any = ex->used_sel[s] = true;
	for (size_t i = 0; i < op->nlabels; i++, s++)
		if (label != NULL && strcmp(op->labels[i], label) == 0)
			any = ex->used_sel[s] = true;
	if (ex->nsel > 0)
		return any;
	return o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY || o->cls == CKO_CERTIFICATE ||
	       o->cls == CKO_SECRET_KEY;
}

/* ---- one object ---- */

/* Whether the owner allowed this key out (PKCS#11 policy); absent
 * attributes count as the strict value. */
static bool releasable(const tfs_xobj *o, char *why, size_t size)
{
	bool extractable = tfs_xobj_bool(o, CKA_EXTRACTABLE, false);
	bool sensitive = tfs_xobj_bool(o, CKA_SENSITIVE, true);
	/* No PKCS#11 call turns a key that was never extractable, or always
	 * sensitive, into one that may leave: these flags set while the others
	 * say "release" mean the file was edited (verify's key.tamper-sign), so
	 * the key stays in. */
	if (extractable && !sensitive && tfs_xobj_bool(o, CKA_NEVER_EXTRACTABLE, false)) {
		snprintf(why, size, "CKA_NEVER_EXTRACTABLE is true though CKA_EXTRACTABLE is true: "
		         "the file was edited (a tamper sign); its owner never let it out");
		return false;
	}
	if (extractable && !sensitive && tfs_xobj_bool(o, CKA_ALWAYS_SENSITIVE, false)) {
		snprintf(why, size, "CKA_ALWAYS_SENSITIVE is true though CKA_SENSITIVE is false: "
		         "the file was edited (a tamper sign); its owner never let it out");
		return false;
	}
	if (extractable && !sensitive)
		return true;
	snprintf(why, size, "%s%s%s: its owner told the token never to release it",
	         extractable ? "" : "CKA_EXTRACTABLE is false",
	         !extractable && sensitive ? " and " : "", sensitive ? "CKA_SENSITIVE is true" : "");
	return false;
}

static int spki_fingerprint(char out[72], EVP_PKEY *pkey, tfs_xbuf *der, tfs_error *err)
{
	int rc = tfs_xenc_public(der, pkey, false, err);
	if (rc == TFS_OK)
		tfs_xenc_sha256(out, der->p, der->len);
	return rc;
}

static const tfs_xobj *find_obj(const tfs_xobj *objs, size_t n, const char *uuid)
{
	for (size_t i = 0; uuid != NULL && i < n; i++)
		if (objs[i].obj != NULL && strcmp(objs[i].uuid, uuid) == 0)
			return &objs[i];
	return NULL;
}

static X509 *parse_cert(const tfs_xobj *c)
{
	size_t len;
	const uint8_t *der = c != NULL ? tfs_xobj_bytes(c, CKA_VALUE, &len, NULL) : NULL;
	const unsigned char *p = der;
	return der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
}

/*
 * The private key must be the one the token's public key object and
 * certificate describe: a mismatch (a swapped or damaged object) refuses
 * the export rather than hand out a key that does not fit.
 */
static bool matches(tfs_xrec *r, EVP_PKEY *pkey, const tfs_xbuf *spki, const tfs_xobj *pub, X509 *cert)
{
	if (pub != NULL) {
		EVP_PKEY *pk = NULL;
		char desc[64], why[200];
		tfs_xbuf der = {0};
		tfs_error err;
		bool built = tfs_xkey_public(&pk, pub, desc, sizeof(desc), why, sizeof(why)) == TFS_OK;
		bool ok = built && tfs_xenc_public(&der, pk, false, &err) == TFS_OK &&
		          der.len == spki->len && memcmp(der.p, spki->p, der.len) == 0;
		EVP_PKEY_free(pk);
		tfs_xbuf_free(&der);
		if (!built) {
			set_status(r, TFS_EXPORT_FAILED,
			           "its public key object %s.object cannot be read to check it (%s): refused",
			           pub->uuid, why);
			return false;
		}
		if (!ok) {
			set_status(r, TFS_EXPORT_FAILED,
			           "does not match its public key object %s.object: refused", pub->uuid);
			return false;
		}
	}
	if (cert != NULL && EVP_PKEY_eq(pkey, X509_get0_pubkey(cert)) != 1) {
		set_status(r, TFS_EXPORT_FAILED, "%s", "does not match its certificate: refused");
		return false;
	}
	return true;
}

static int add_private(tfs_export *ex, tfs_xrec *r, const tfs_xobj *o, const tfs_xobj *pub,
                       const tfs_xobj *cert_obj, tfs_error *err)
{
	EVP_PKEY *pkey = NULL;
	char why[256];
	int rc = tfs_xkey_private(&pkey, o, r->key_type, sizeof(r->key_type), why, sizeof(why));
	if (rc != TFS_OK) {
		set_status(r, rc == TFS_E_NOTFOUND ? TFS_EXPORT_UNSUPPORTED : TFS_EXPORT_FAILED, "%s",
		           rc == TFS_E_INVALID ? "encrypted, and no PIN unlocked the token" : why);
		return TFS_OK;
	}
	tfs_xbuf spki = {0};
	X509 *cert = parse_cert(cert_obj);
	rc = spki_fingerprint(r->fingerprint, pkey, &spki, err);
	if (rc == TFS_OK && matches(r, pkey, &spki, pub, cert)) {
		rc = tfs_xenc_private_pem(&r->data, pkey, ex->opts.passphrase, ex->opts.passphrase_len, err);
		r->pub.encrypted = ex->opts.passphrase != NULL;
		if (rc == TFS_OK && ex->p12 != NULL)
			rc = tfs_xp12_add(ex->p12, pkey, cert, r->label != NULL ? r->label : "", ex->p12_pass, err);
	}
	X509_free(cert);
	tfs_xbuf_free(&spki);
	EVP_PKEY_free(pkey);
	return rc;
}

static int add_public(tfs_xrec *r, const tfs_xobj *o, tfs_error *err)
{
	EVP_PKEY *pkey = NULL;
	char why[256];
	int rc = tfs_xkey_public(&pkey, o, r->key_type, sizeof(r->key_type), why, sizeof(why));
	if (rc != TFS_OK) {
		set_status(r, rc == TFS_E_NOTFOUND ? TFS_EXPORT_UNSUPPORTED : TFS_EXPORT_FAILED, "%s", why);
		return TFS_OK;
	}
	tfs_xbuf spki = {0};
	rc = spki_fingerprint(r->fingerprint, pkey, &spki, err);
	if (rc == TFS_OK)
		rc = tfs_xenc_public(&r->data, pkey, true, err);
	tfs_xbuf_free(&spki);
	EVP_PKEY_free(pkey);
	return rc;
}

static int add_cert(tfs_xrec *r, const tfs_xobj *o, tfs_error *err)
{
	if (o->cert_type != CKC_X_509) {
		const char *name = tfs_name(TFS_NS_CKC, o->cert_type);
		set_status(r, TFS_EXPORT_UNSUPPORTED, "certificate type %s has no standard file",
		           name != NULL ? name : "unknown");
		return TFS_OK;
	}
	size_t len;
	bool locked;
	const uint8_t *der = tfs_xobj_bytes(o, CKA_VALUE, &len, &locked);
	X509 *cert = parse_cert(o);
	if (cert == NULL) {
		set_status(r, TFS_EXPORT_FAILED, "%s",
		           locked ? "encrypted, and no PIN unlocked the token"
		                  : "CKA_VALUE is not an X.509 certificate OpenSSL can read");
		return TFS_OK;
	}
	snprintf(r->key_type, sizeof(r->key_type), "X.509 %s %d", EVP_PKEY_get0_type_name(X509_get0_pubkey(cert)),
	         EVP_PKEY_get_bits(X509_get0_pubkey(cert)));
	tfs_xbuf spki = {0};
	int rc = spki_fingerprint(r->fingerprint, X509_get0_pubkey(cert), &spki, err);
	if (rc == TFS_OK)
		rc = tfs_xenc_cert_pem(&r->data, der, len, err);
	tfs_xbuf_free(&spki);
	X509_free(cert);
	return rc;
}

static int add_secret(tfs_export *ex, tfs_xrec *r, const tfs_xobj *o, tfs_error *err)
{
	const char *kt = tfs_name(TFS_NS_CKK, o->key_type);
	size_t len;
	bool locked;
	const uint8_t *v = tfs_xobj_bytes(o, CKA_VALUE, &len, &locked);
	snprintf(r->key_type, sizeof(r->key_type), "%s %zu-bit", kt != NULL ? kt + 4 : "secret",
	         len * 8);
	if (v == NULL || len == 0) {
		set_status(r, TFS_EXPORT_FAILED, "%s",
		           locked ? "encrypted, and no PIN unlocked the token" : "CKA_VALUE is missing");
		return TFS_OK;
	}
	if (tfs_key_fingerprint(r->fingerprint, o->key_type, CKA_VALUE, v, len, err) != TFS_OK)
		r->fingerprint[0] = '\0';
	return tfs_xenc_secret(&r->data, ex->opts.secret_format, v, len, r->label != NULL ? r->label : "",
	                       err);
}

/* ---- file names ---- */

/* Untrusted text as a file-name part: ASCII letters, digits and -_.+@
 * stay, every other byte (separators, controls, UTF-8) becomes '_', runs
 * of '_' collapse, at most 64 characters, never starting with '.'. */
static void safe_part(char *out, size_t size, const char *s)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < size && o < 64; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		          strchr("-_.+@", *p) != NULL;
		char c = ok && !(o == 0 && *p == '.') ? (char)*p : '_';
		if (c == '_' && o > 0 && out[o - 1] == '_')
			continue;
		out[o++] = c;
	}
	out[o] = '\0';
}

static bool name_taken(const tfs_export *ex, const char *name)
{
	if (strcmp(name, "export.json") == 0)
		return true;
	/* The bundle's name is taken before any key is named. */
	if (ex->opts.pkcs12_file != NULL && strcmp(ex->opts.pkcs12_file, name) == 0)
		return true;
	for (size_t i = 0; i < ex->n; i++)
		if (ex->recs[i]->file != NULL && strcmp(ex->recs[i]->file, name) == 0)
			return true;
	return false;
}

static int name_file(tfs_export *ex, tfs_xrec *r, const char *suffix, tfs_error *err)
{
	char lab[80], stem[200], name[300];
	safe_part(lab, sizeof(lab), r->label != NULL ? r->label : "");
	if (lab[0] == '\0' && r->id[0] == '\0')
		snprintf(stem, sizeof(stem), "%s", r->object_uuid);
	else
		snprintf(stem, sizeof(stem), "%s%s%s", lab, lab[0] && r->id[0] ? "_" : "",
		         r->id[0] ? r->id : "");
	/* A leading '-' would read as an option to the next shell command. */
	if (stem[0] == '-')
		stem[0] = '_';
	snprintf(name, sizeof(name), "%s%s", stem, suffix);
	if (name_taken(ex, name)) /* two objects with one label and id, or two tokens */
		snprintf(name, sizeof(name), "%s_%.8s%s", stem, r->object_uuid, suffix);
	if (name_taken(ex, name))
		snprintf(name, sizeof(name), "%s_%s%s", stem, r->object_uuid, suffix);
	/* Labels can be chosen to collide with both: count until a name is free,
	 * so that no key is ever written over another. */
	for (unsigned k = 2; name_taken(ex, name); k++)
		snprintf(name, sizeof(name), "%s_%s_%u%s", stem, r->object_uuid, k, suffix);
	r->file = strdup(name);
	return r->file != NULL ? TFS_OK : tfs_nomem(err);
}

static const char *suffix_of(const tfs_export *ex, uint64_t cls)
{
	static const char *const secret[] = {".secret.bin", ".secret.hex", ".secret.jwk"};
	switch (cls) {
	case CKO_PRIVATE_KEY: return ".key.pem";
	case CKO_PUBLIC_KEY: return ".pub.pem";
	case CKO_CERTIFICATE: return ".crt.pem";
	default: return secret[ex->opts.secret_format];
	}
}

static const char *kind_of(uint64_t cls)
{
	switch (cls) {
	case CKO_PRIVATE_KEY: return "private_key";
	case CKO_PUBLIC_KEY: return "public_key";
	case CKO_CERTIFICATE: return "certificate";
	case CKO_SECRET_KEY: return "secret_key";
	default: return "object";
	}
}

/* What the token's pairing (tokenfs/pairing.h) found: keys and checks. */
typedef struct pairs_found {
	const tfs_key_pair *keys;
	size_t nkeys;
	const tfs_pair_check *checks;
	size_t nchecks;
} pairs_found;

static int add_object(tfs_export *ex, const tfs_token *tok, const tfs_xobj *objs, size_t nobjs,
                      const tfs_xobj *o, const pairs_found *pf, tfs_error *err)
{
	size_t id_len, label_len;
	bool label_locked;
	const uint8_t *id = tfs_xobj_bytes(o, CKA_ID, &id_len, NULL);
	const uint8_t *label = tfs_xobj_bytes(o, CKA_LABEL, &label_len, &label_locked);
	char id_hex[80] = "";
	for (size_t i = 0; id != NULL && i < id_len && 2 * i + 2 < sizeof(id_hex); i++)
		snprintf(id_hex + 2 * i, 3, "%02x", id[i]);
	char *label_s = label != NULL ? strndup((const char *)label, label_len) : NULL;
	if (label != NULL && label_s == NULL)
		return tfs_nomem(err);
	if (!selected(ex, o, id_hex, label_s)) {
		free(label_s);
		return TFS_OK;
	}
	tfs_xrec *r = tfs_xrec_add(ex, tok, o, kind_of(o->cls), err);
	if (r == NULL) {
		free(label_s);
		return err->code;
	}
	r->label = label_s;
	snprintf(r->id, sizeof(r->id), "%s", id_hex);
	/* Refined by the key itself once built ("RSA 2048"). */
	const char *kt = tfs_name(TFS_NS_CKK, o->key_type);
	if (kt != NULL && o->cls != CKO_CERTIFICATE)
		snprintf(r->key_type, sizeof(r->key_type), "%s", kt + 4);
	char why[320];
	int rc = TFS_OK;
	switch (o->cls) {
	case CKO_PRIVATE_KEY:
	case CKO_SECRET_KEY:
		if (!ex->opts.include_unextractable && !releasable(o, why, sizeof(why))) {
			set_status(r, TFS_EXPORT_SKIPPED, "%s", why);
			break;
		}
		if (o->cls == CKO_SECRET_KEY) {
			rc = add_secret(ex, r, o, err);
			break;
		}
		/* The pairing verify-integrity reports key.pair-mismatch from: a
		 * key its public key object contradicts is not handed out. */
		const tfs_pair_check *c = NULL;
		for (size_t i = 0; i < pf->nchecks && c == NULL; i++)
			if (strcmp(pf->checks[i].uuid, o->uuid) == 0)
				c = &pf->checks[i];
		if (c != NULL && c->verdict == TFS_PAIR_MISMATCH && c->other_class == CKO_PUBLIC_KEY) {
			set_status(r, TFS_EXPORT_FAILED,
			           "does not match its public key object %s.object (%s): refused",
			           c->other_uuid, c->why);
			break;
		}
		const tfs_key_pair *k = NULL;
		for (size_t i = 0; i < pf->nkeys && k == NULL; i++)
			if (pf->keys[i].private_uuid != NULL &&
			    strcmp(pf->keys[i].private_uuid, o->uuid) == 0)
				k = &pf->keys[i];
		rc = add_private(ex, r, o, k != NULL ? find_obj(objs, nobjs, k->public_uuid) : NULL,
		                 k != NULL ? find_obj(objs, nobjs, k->cert_uuid) : NULL, err);
		break;
	case CKO_PUBLIC_KEY: rc = add_public(r, o, err); break;
	case CKO_CERTIFICATE: rc = add_cert(r, o, err); break;
	default: {
		const char *name = tfs_name(TFS_NS_CKO, o->cls);
		set_status(r, TFS_EXPORT_UNSUPPORTED, "%s is not a key or a certificate",
		           name != NULL ? name : "an object of unknown class");
	}
	}
	if (rc == TFS_E_CRYPTO || rc == TFS_E_LIMIT) {
		/* One key OpenSSL cannot encode is that key's failure, not the run's. */
		set_status(r, TFS_EXPORT_FAILED, "%s", err->what);
		tfs_xbuf_free(&r->data);
		rc = TFS_OK;
	}
	if (rc == TFS_OK && r->pub.status == TFS_EXPORT_READY)
		rc = name_file(ex, r, suffix_of(ex, o->cls), err);
	return rc;
}

static const uint8_t *xobj_bytes(void *ctx, uint64_t type, size_t *len)
{
	return tfs_xobj_bytes(ctx, type, len, NULL);
}

/* Feeds one object's plaintext to pairing, as dump does. */
static void pair(tfs_pairing *p, const tfs_xobj *o)
{
	tfs_pair_input in;
	tfs_pair_input_from_object(&in, o->uuid, o->obj, xobj_bytes, (void *)o);
	(void)tfs_pairing_add(p, &in, NULL, 0);
}

int tfs_export_add_token(tfs_export *ex, const tfs_token *tok, const tfs_token_key *key,
                         tfs_error *err)
{
	/* Where the keys come from: the output must not go inside it. */
	char **dirs = realloc(ex->token_dirs, (ex->ntoken_dirs + 1) * sizeof(*dirs));
	if (dirs == NULL)
		return tfs_nomem(err);
	ex->token_dirs = dirs;
	if ((dirs[ex->ntoken_dirs] = strdup(tfs_token_path(tok))) == NULL)
		return tfs_nomem(err);
	ex->ntoken_dirs++;
	size_t n = tfs_token_object_count(tok);
	tfs_xobj *objs = calloc(n + 1, sizeof(*objs));
	tfs_pairing *pairs = tfs_pairing_new();
	int rc = objs != NULL && pairs != NULL ? TFS_OK : tfs_nomem(err);
	for (size_t i = 0; rc == TFS_OK && i < n; i++) {
		tfs_error oerr;
		int orc = xobj_load(&objs[i], tok, i, key, &oerr);
		if (orc == TFS_E_NOMEM || orc == TFS_E_IO || orc == TFS_E_LOCKED) {
			*err = oerr;
			rc = orc;
		} else if (orc != TFS_OK) {
			/* Unreadable: nobody can tell whether it held a key. */
			xobj_clear(&objs[i]);
			tfs_xrec *r = tfs_xrec_add(ex, tok, NULL, "object", err);
			char msg[1200];
			if (r == NULL)
				rc = err->code;
			else if ((r->object_uuid = strdup(tfs_token_object_uuid(tok, i))) == NULL)
				rc = tfs_nomem(err);
			else
				set_status(r, TFS_EXPORT_FAILED, "%s", tfs_error_format(&oerr, msg, sizeof(msg)));
		} else {
			pair(pairs, &objs[i]);
		}
		if (ex->opts.progress != NULL)
			ex->opts.progress(ex->opts.progress_ctx, tok, "reading", i + 1, n);
	}
	pairs_found pf = {0};
	if (rc == TFS_OK) {
		pf.keys = tfs_pairing_keys(pairs, &pf.nkeys);
		pf.checks = tfs_pairing_checks(pairs, &pf.nchecks);
		if (pf.keys == NULL || pf.checks == NULL)
			rc = tfs_nomem(err);
	}
	for (size_t i = 0; rc == TFS_OK && i < n; i++) {
		if (objs[i].obj != NULL)
			rc = add_object(ex, tok, objs, n, &objs[i], &pf, err);
		if (ex->opts.progress != NULL) /* PBKDF2 for each key: the slow part */
			ex->opts.progress(ex->opts.progress_ctx, tok, "encoding", i + 1, n);
	}
	for (size_t i = 0; objs != NULL && i < n; i++)
		xobj_clear(&objs[i]);
	free(objs);
	tfs_pairing_free(pairs);
	return rc;
}
