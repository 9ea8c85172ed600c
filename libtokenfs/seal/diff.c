/*
 * One object file against its recorded state (a seal, or the other store of
 * a tokenfs diff): which attributes were added, removed or changed (by name,
 * with old and new value), whether the object was rolled back, and which
 * changes are what SoftHSM itself does in normal use (a generation bump,
 * PIN-failure flags) and so only information.
 */
#include "seal/seal_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"
#include "core/error_internal.h"
#include "tokenfs/names.h"
#include "tokenfs/crypto.h"
#include "tokenfs/pairing.h"

#define CKA_CLASS 0x0
#define CKA_LABEL 0x3
#define CKA_KEY_TYPE 0x100

typedef struct diff {
	tfs_vtoken *vt;
	tfs_vobject o;            /* the current file, for tfs_vfinding */
	bool is_token;
	const tfs_seal_object *so;
	const tfs_seal_cmp *opt;  /* old key, reveal, wording */
	const uint8_t *data;      /* current bytes */
	size_t size;
	uint64_t cls, key_type;   /* of the current object */
	size_t added;             /* findings */
	size_t errors;            /* ... of which errors */
	bool nomem;
} diff;

/* A finding; old and new (NULL: not an attribute value, or absent on that
 * side) are kept apart too, for tools that show them side by side. */
static void finding_values(diff *d, const char *code, tfs_severity sev, uint64_t type,
                           const tfs_seal_strbuf *msg, const tfs_seal_strbuf *old,
                           const tfs_seal_strbuf *cur)
{
	if (msg->failed || msg->p == NULL || (old && old->failed) || (cur && cur->failed) ||
	    tfs_vfinding(d->vt, code, sev, &d->o, type, "%s", msg->p) != TFS_OK ||
	    ((old != NULL || cur != NULL) &&
	     tfs_findings_set_values(d->vt->findings, old ? old->p : NULL, cur ? cur->p : NULL) !=
	     TFS_OK)) {
		d->nomem = true;
		return;
	}
	d->added++;
	if (sev == TFS_SEV_ERROR)
		d->errors++;
}

static void finding(diff *d, const char *code, tfs_severity sev, uint64_t type,
                    const tfs_seal_strbuf *msg)
{
	finding_values(d, code, sev, type, msg, NULL, NULL);
}

static uint64_t ulong_of(const tfs_object *obj, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : UINT64_MAX;
}

/* The stored bytes of current attribute k. */
static void current_span(const diff *d, const tfs_object *obj, size_t k, uint64_t *off,
                         uint64_t *end)
{
	*off = tfs_attr_offset(tfs_object_attr(obj, k));
	*end = k + 1 < tfs_object_attr_count(obj) ? tfs_attr_offset(tfs_object_attr(obj, k + 1))
	                                          : d->size;
}

/* The current side of a comparison, with what is secret redacted. */
static void current_view(const diff *d, const tfs_object *obj, const tfs_attr *a,
                         const uint8_t sha[32], char fp[TFS_FINGERPRINT_LEN], tfs_seal_view *v)
{
	memset(v, 0, sizeof(*v));
	v->a = a;
	v->reveal = d->opt->reveal;
	uint64_t type = tfs_attr_type(a);
	bool bytes = tfs_attr_kind(a) == TFS_KIND_BYTES;
	v->encrypted = bytes && !d->is_token && tfs_object_attr_encrypted(obj, a);
	if (bytes && d->is_token && (type == TFS_CKA_OS_SOPIN || type == TFS_CKA_OS_USERPIN)) {
		v->redacted = "pin-blob";
		v->sha256 = sha;
		return;
	}
	if (!bytes || d->is_token || !tfs_object_attr_is_key_material(obj, a))
		return;
	v->redacted = "key-material";
	size_t len;
	const uint8_t *p = tfs_attr_bytes(a, &len);
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	tfs_layout layout;
	if (v->encrypted) {
		if (tfs_token_key_decrypt(d->vt->key, &pt, &pt_len, &layout, p, len, NULL) != TFS_OK) {
			v->fingerprint = "a ciphertext that does not decrypt";
			return;
		}
		p = pt;
		len = pt_len;
	}
	if (tfs_key_fingerprint(fp, d->key_type, type, p, len, NULL) == TFS_OK)
		v->fingerprint = fp;
	tfs_secure_free(pt, pt_len);
}

/* The sealed side; *tmp holds the parsed one-attribute record. */
static void sealed_view(const diff *d, const tfs_seal_attr *sa, tfs_object **tmp,
                        tfs_seal_view *v)
{
	memset(v, 0, sizeof(*v));
	*tmp = NULL;
	v->reveal = d->opt->reveal;
	v->encrypted = sa->encrypted;
	v->redacted = sa->redacted;
	v->fingerprint = sa->fingerprint;
	v->sha256 = sa->sha256;
	if (sa->record != NULL && tfs_object_parse(tmp, sa->record, sa->record_len, NULL) == TFS_OK &&
	    tfs_object_attr_count(*tmp) == 1)
		v->a = tfs_object_attr(*tmp, 0);
}

/* Whether both sides are ciphertexts of the same plaintext. */
static bool same_plaintext(const diff *d, const tfs_seal_view *a, const tfs_seal_view *b)
{
	if (!a->encrypted || !b->encrypted || a->a == NULL || b->a == NULL)
		return false;
	size_t n1, n2, l1 = 0, l2 = 0;
	const uint8_t *c1 = tfs_attr_bytes(a->a, &n1), *c2 = tfs_attr_bytes(b->a, &n2);
	uint8_t *p1 = NULL, *p2 = NULL;
	tfs_layout layout;
	if (d->opt->old_key == NULL || d->vt->key == NULL)
		return false;
	bool same = tfs_token_key_decrypt(d->opt->old_key, &p1, &l1, &layout, c1, n1, NULL) == TFS_OK &&
	            tfs_token_key_decrypt(d->vt->key, &p2, &l2, &layout, c2, n2, NULL) == TFS_OK &&
	            l1 == l2 && memcmp(p1, p2, l1) == 0;
	tfs_secure_free(p1, l1);
	tfs_secure_free(p2, l2);
	return same;
}

static void rollback_note(const diff *d, tfs_seal_strbuf *b, uint64_t gen)
{
	if (gen < d->so->generation)
		tfs_seal_sb_printf(b, "; the object was rolled back to an older version (generation "
		                   "%llu, %s %llu)", (unsigned long long)gen,
		                   d->opt->diff ? "before" : "sealed",
		                   (unsigned long long)d->so->generation);
}

static void changed(diff *d, const tfs_seal_attr *sa, const tfs_object *obj, const tfs_attr *a,
                    const uint8_t sha[32])
{
	char nb[24], fp[TFS_FINGERPRINT_LEN];
	const char *name = tfs_vattr_name(sa->type, nb);
	tfs_object *tmp;
	tfs_seal_view old, cur;
	sealed_view(d, sa, &tmp, &old);
	current_view(d, obj, a, sha, fp, &cur);
	tfs_seal_strbuf b = {0};
	const char *code = "seal.attribute-changed";
	tfs_severity sev = TFS_SEV_ERROR;
	if (d->is_token && sa->type == TFS_CKA_OS_TOKENFLAGS && old.a != NULL &&
	    tfs_attr_kind(old.a) == TFS_KIND_ULONG && tfs_attr_kind(a) == TFS_KIND_ULONG &&
	    ((tfs_attr_ulong(old.a) ^ tfs_attr_ulong(a)) & ~TFS_SEAL_PIN_FLAGS) == 0) {
		code = "seal.pin-count-flags";
		sev = TFS_SEV_INFO;
	}
	tfs_seal_strbuf ov = {0}, nv = {0};
	tfs_seal_render(&ov, &old, d->opt->old_key);
	tfs_seal_render(&nv, &cur, d->vt->key);
	tfs_seal_sb_printf(&b, "%s changed from %s to %s", name, ov.p ? ov.p : "", nv.p ? nv.p : "");
	if (sa->type == TFS_CKA_OS_TOKENFLAGS && d->is_token && old.a != NULL &&
	    tfs_attr_kind(old.a) == TFS_KIND_ULONG && tfs_attr_kind(a) == TFS_KIND_ULONG) {
		tfs_seal_sb_printf(&b, " (");
		tfs_seal_render_flag_diff(&b, tfs_attr_ulong(old.a), tfs_attr_ulong(a));
		tfs_seal_sb_printf(&b, ")");
	}
	if (sev == TFS_SEV_INFO)
		tfs_seal_sb_printf(&b, ": SoftHSM sets these flags after failed logins and clears "
		                   "them after a good one");
	else if (same_plaintext(d, &old, &cur))
		tfs_seal_sb_printf(&b, " (the same plaintext, encrypted anew)");
	else if (cur.redacted != NULL && strcmp(cur.redacted, "pin-blob") == 0)
		tfs_seal_sb_printf(&b, ": the PIN was changed, or the blob replaced");
	rollback_note(d, &b, tfs_object_generation(obj));
	finding_values(d, code, sev, sa->type, &b, &ov, &nv);
	free(b.p);
	free(ov.p);
	free(nv.p);
	tfs_object_free(tmp);
}

static void removed(diff *d, const tfs_seal_attr *sa, const tfs_object *obj)
{
	char nb[24];
	tfs_object *tmp;
	tfs_seal_view old;
	sealed_view(d, sa, &tmp, &old);
	tfs_seal_strbuf b = {0};
	tfs_seal_strbuf ov = {0};
	tfs_seal_render(&ov, &old, d->opt->old_key);
	tfs_seal_sb_printf(&b, "%s removed; %s %s", tfs_vattr_name(sa->type, nb),
	                   d->opt->diff ? "it was" : "sealed value", ov.p ? ov.p : "");
	rollback_note(d, &b, tfs_object_generation(obj));
	finding_values(d, "seal.attribute-changed", TFS_SEV_ERROR, sa->type, &b, &ov, NULL);
	free(b.p);
	free(ov.p);
	tfs_object_free(tmp);
}

static void added(diff *d, const tfs_object *obj, const tfs_attr *a, const uint8_t sha[32])
{
	char nb[24], fp[TFS_FINGERPRINT_LEN];
	tfs_seal_view cur;
	current_view(d, obj, a, sha, fp, &cur);
	tfs_seal_strbuf b = {0}, nv = {0};
	tfs_seal_render(&nv, &cur, d->vt->key);
	tfs_seal_sb_printf(&b, "%s added%s: %s", tfs_vattr_name(tfs_attr_type(a), nb),
	                   d->opt->diff ? "" : ", not in the seal", nv.p ? nv.p : "");
	rollback_note(d, &b, tfs_object_generation(obj));
	finding_values(d, "seal.attribute-changed", TFS_SEV_ERROR, tfs_attr_type(a), &b, NULL, &nv);
	free(b.p);
	free(nv.p);
}

/* A file that no longer parses: name the first sealed attribute whose bytes
 * are not where and what they were. */
static void unparseable(diff *d, const tfs_error *pe)
{
	const tfs_seal_object *so = d->so;
	uint64_t pos = 8, culprit = TFS_VNO_ATTR, at = 0;
	bool gen_changed = d->size < 8 || tfs_be64(d->data) != so->generation;
	for (size_t k = 0; k < so->nattrs && culprit == TFS_VNO_ATTR; k++) {
		const tfs_seal_attr *sa = &so->attrs[k];
		uint8_t md[32];
		if (sa->size > d->size - (pos < d->size ? pos : d->size) ||
		    tfs_sha256(md, d->data + pos, (size_t)sa->size, NULL) != TFS_OK ||
		    memcmp(md, sa->sha256, 32) != 0) {
			culprit = sa->type;
			at = pos;
		}
		pos += sa->size;
	}
	tfs_seal_strbuf b = {0};
	char nb[24];
	tfs_seal_sb_printf(&b, "no longer parses as an object file (");
	if (pe->offset != TFS_NO_OFFSET)
		tfs_seal_sb_printf(&b, "offset %llu: ", (unsigned long long)pe->offset);
	tfs_seal_sb_printf(&b, "%s)", pe->what);
	if (culprit != TFS_VNO_ATTR)
		tfs_seal_sb_printf(&b, "; the first sealed attribute whose bytes changed is %s, "
		                   "sealed at offset %llu", tfs_vattr_name(culprit, nb),
		                   (unsigned long long)at);
	else if (gen_changed)
		tfs_seal_sb_printf(&b, "; its generation changed");
	else
		tfs_seal_sb_printf(&b, "; every sealed attribute is intact, bytes follow them at "
		                   "offset %llu", (unsigned long long)pos);
	tfs_location loc = {.path = d->o.path, .offset = pe->offset, .object = d->o.uuid,
	                    .has_attr = culprit != TFS_VNO_ATTR, .attr = culprit};
	if (b.failed || tfs_findings_addl(d->vt->findings, "seal.file-changed", TFS_SEV_ERROR, &loc,
	                                  "%s", b.p) != TFS_OK)
		d->nomem = true;
	else {
		d->added++;
		d->errors++;
	}
	free(b.p);
}

static void generation(diff *d, uint64_t gen, bool reordered)
{
	uint64_t old = d->so->generation;
	tfs_seal_strbuf b = {0};
	unsigned long long o = (unsigned long long)old, n = (unsigned long long)gen;
	if (gen < old) {
		tfs_seal_sb_printf(&b, "generation went down from %llu to %llu: the object was rolled "
		                   "back to an older version%s", o, n,
		                   d->errors ? "" : d->opt->diff ? " (its attributes are as before)"
		                                                 : " (its attributes are as sealed)");
		finding(d, "seal.generation-changed", TFS_SEV_ERROR, TFS_VNO_ATTR, &b);
	} else if (gen - old > TFS_SEAL_MAX_BUMP) {
		tfs_seal_sb_printf(&b, "generation jumped from %llu to %llu, more than SoftHSM's "
		                   "increments of one per write reach", o, n);
		finding(d, "seal.generation-changed", TFS_SEV_ERROR, TFS_VNO_ATTR, &b);
	} else if (gen > old && d->errors == 0 && !reordered) {
		tfs_seal_sb_printf(&b, "generation rose from %llu to %llu%s: SoftHSM rewrote the "
		                   "file in normal use", o, n,
		                   d->added ? "" : d->opt->diff ? " with every attribute as before"
		                                                : " with every attribute as sealed");
		finding(d, "seal.generation-bumped", TFS_SEV_INFO, TFS_VNO_ATTR, &b);
	}
	free(b.p);
}

static void compare(diff *d, const tfs_object *obj)
{
	const tfs_seal_object *so = d->so;
	size_t n = tfs_object_attr_count(obj);
	bool *used = calloc(n + 1, sizeof(*used));
	if (used == NULL) {
		d->nomem = true;
		return;
	}
	/* The i-th attribute of a type is compared with the i-th of that type. */
	bool reordered = false;
	size_t last = 0;
	for (size_t k = 0; k < so->nattrs && !d->nomem; k++) {
		const tfs_seal_attr *sa = &so->attrs[k];
		size_t occ = 0, j;
		for (size_t i = 0; i < k; i++)
			occ += so->attrs[i].type == sa->type;
		for (j = 0; j < n; j++)
			if (tfs_attr_type(tfs_object_attr(obj, j)) == sa->type && occ-- == 0)
				break;
		if (j == n) {
			removed(d, sa, obj);
			continue;
		}
		used[j] = true;
		reordered |= k > 0 && j < last;
		last = j;
		uint64_t off, end;
		uint8_t md[32];
		current_span(d, obj, j, &off, &end);
		if (tfs_sha256(md, d->data + off, (size_t)(end - off), NULL) != TFS_OK) {
			d->nomem = true;
			break;
		}
		if (end - off != sa->size || memcmp(md, sa->sha256, 32) != 0)
			changed(d, sa, obj, tfs_object_attr(obj, j), md);
	}
	for (size_t j = 0; j < n && !d->nomem; j++) {
		if (used[j])
			continue;
		uint64_t off, end;
		uint8_t md[32];
		current_span(d, obj, j, &off, &end);
		if (tfs_sha256(md, d->data + off, (size_t)(end - off), NULL) != TFS_OK)
			d->nomem = true;
		else
			added(d, obj, tfs_object_attr(obj, j), md);
	}
	if (reordered && !d->nomem) {
		tfs_seal_strbuf b = {0};
		tfs_seal_sb_printf(&b, "attributes are in another order than when sealed; SoftHSM "
		                   "writes them in ascending type order");
		finding(d, "seal.file-changed", TFS_SEV_ERROR, TFS_VNO_ATTR, &b);
		free(b.p);
	}
	if (!d->nomem)
		generation(d, tfs_object_generation(obj), reordered);
	free(used);
}

int tfs_seal_diff_object(tfs_vtoken *vt, const char *dir, const char *name,
                         const tfs_seal_object *so, const uint8_t *data, size_t size,
                         const tfs_seal_cmp *opt, size_t *added_out)
{
	*added_out = 0;
	diff d = {.vt = vt, .so = so, .opt = opt, .data = data, .size = size,
	          .is_token = strcmp(name, "token.object") == 0};
	char *uuid = d.is_token ? NULL : strndup(name, strlen(name) - strlen(".object"));
	char *path = NULL;
	if ((!d.is_token && uuid == NULL) || asprintf(&path, "%s/%s", dir, name) < 0) {
		free(uuid);
		return TFS_E_NOMEM;
	}
	d.o.path = path;
	d.o.uuid = uuid;
	d.o.cls = d.o.key_type = d.o.cert_type = UINT64_MAX;
	tfs_object *obj = NULL;
	tfs_error pe;
	int rc = so != NULL ? tfs_object_parse(&obj, data, size, &pe) : TFS_OK;
	if (rc == TFS_E_NOMEM) {
		d.nomem = true;
	} else if (so == NULL) {
		/* Did not parse when sealed: the file hash is all there is. */
	} else if (rc != TFS_OK) {
		unparseable(&d, &pe);
	} else {
		d.o.obj = obj;
		d.cls = d.is_token ? UINT64_MAX : ulong_of(obj, CKA_CLASS);
		d.key_type = d.is_token ? UINT64_MAX : ulong_of(obj, CKA_KEY_TYPE);
		compare(&d, obj);
	}
	tfs_object_free(obj);
	free(path);
	free(uuid);
	*added_out = d.added;
	return d.nomem ? TFS_E_NOMEM : TFS_OK;
}

/* Plaintexts a description reads: decrypted ones are wiped after. */
typedef struct describe_ctx {
	const tfs_object *obj;
	const tfs_token_key *key;
	uint8_t *plain[8];
	size_t plain_len[8], nplain;
} describe_ctx;

static const uint8_t *describe_bytes(void *ctx, uint64_t type, size_t *len)
{
	describe_ctx *d = ctx;
	const tfs_attr *a = tfs_object_find(d->obj, type);
	*len = 0;
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_BYTES)
		return NULL;
	size_t n;
	const uint8_t *p = tfs_attr_bytes(a, &n);
	if (!tfs_object_attr_encrypted(d->obj, a)) {
		*len = n;
		return p;
	}
	uint8_t *pt;
	size_t pt_len;
	tfs_layout layout;
	if (d->key == NULL || d->nplain == sizeof(d->plain) / sizeof(d->plain[0]) ||
	    tfs_token_key_decrypt(d->key, &pt, &pt_len, &layout, p, n, NULL) != TFS_OK)
		return NULL;
	d->plain[d->nplain] = pt;
	d->plain_len[d->nplain++] = pt_len;
	*len = pt_len;
	return pt;
}

/* The one-line summary dump shows for an object ("secret key AES 256-bit
 * 'label' id 01", tokenfs/pairing.h), decrypted with the token key when
 * there is one. */
char *tfs_seal_describe_object(const tfs_vtoken *vt, const uint8_t *data, size_t size)
{
	tfs_object *obj;
	if (tfs_object_parse(&obj, data, size, NULL) != TFS_OK)
		return strdup("a file that does not parse as an object");
	describe_ctx d = {.obj = obj, .key = vt->key};
	tfs_pair_input in;
	tfs_pair_input_from_object(&in, NULL, obj, describe_bytes, &d);
	char buf[1024];
	(void)tfs_pairing_add(NULL, &in, buf, sizeof(buf));
	for (size_t i = 0; i < d.nplain; i++)
		tfs_secure_free(d.plain[i], d.plain_len[i]);
	tfs_object_free(obj);
	return strdup(buf);
}
