/*
 * The verifier's model of a token: load each object once, decrypt what the
 * key opens, and give the check modules uniform access to plaintext.
 */
#include "verify/verify_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"
#include "tokenfs/names.h"

#define CKA_CLASS 0x0
#define CKA_KEY_TYPE 0x100
#define CKA_CERTIFICATE_TYPE 0x80

static uint64_t ulong_or_none(const tfs_object *obj, uint64_t type)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : UINT64_MAX;
}

/* Where a parse failure is reported, and how bad it is: a file that merely
 * ends early is what a torn write leaves (SoftHSM writes in place without
 * fsync); anything else is damage or not a SoftHSM object at all. */
static int parse_failure(tfs_vtoken *vt, const tfs_vobject *o, const tfs_error *e)
{
	tfs_location loc = {.path = o->path, .offset = e->offset, .object = o->uuid};
	const char *code = "object.malformed";
	tfs_severity sev = TFS_SEV_ERROR;
	const char *what = "";
	if (e->code == TFS_E_NOTFOUND) {
		/* Listed, then gone: a live SoftHSM destroyed it. Nothing to judge. */
		code = "object.gone";
		sev = TFS_SEV_INFO;
		what = "removed while the token was read (a live SoftHSM destroyed it): ";
	} else if (e->code == TFS_E_EMPTY) {
		code = "object.empty";
		sev = TFS_SEV_WARNING;
	} else if (e->code == TFS_E_TRUNCATED) {
		/* SoftHSM 2.6.1 marks such an object invalid and leaves it out of
		 * the token (C_FindObjects does not list it: the key is gone), or,
		 * when the cut is inside an attribute's type, loads what precedes
		 * it and writes the rest back empty. Either way something is lost. */
		code = "object.torn";
		what = "torn or truncated file (SoftHSM leaves the object out of the token, or "
		       "writes it back without what follows the cut): ";
	} else if (e->code == TFS_E_IO) {
		code = "object.unreadable";
	}
	return tfs_findings_addl(vt->findings, code, sev, &loc, "%s%s", what, e->what);
}

static int decrypt_values(tfs_vobject *o, const tfs_token_key *key, tfs_verify_summary *sum)
{
	size_t n = tfs_object_attr_count(o->obj);
	o->values = calloc(n + 1, sizeof(*o->values));
	if (o->values == NULL)
		return TFS_E_NOMEM;
	for (size_t k = 0; k < n; k++) {
		const tfs_attr *a = tfs_object_attr(o->obj, k);
		tfs_vvalue *v = &o->values[k];
		if (tfs_attr_kind(a) != TFS_KIND_BYTES)
			continue;
		size_t len;
		const uint8_t *p = tfs_attr_bytes(a, &len);
		v->encrypted = tfs_object_attr_encrypted(o->obj, a);
		if (!v->encrypted) {
			v->p = p;
			v->len = len;
			continue;
		}
		sum->values_encrypted++;
		if (key == NULL)
			continue;
		uint8_t *pt;
		size_t pt_len;
		tfs_error e;
		int rc = tfs_token_key_decrypt(key, &pt, &pt_len, &v->layout, p, len, &e);
		if (rc == TFS_E_NOMEM)
			return rc;
		if (rc != TFS_OK) {
			v->failed = true;
			continue;
		}
		v->p = pt;
		v->len = pt_len;
		v->owned = true;
		sum->values_decrypted++;
		if (v->layout == TFS_LAYOUT_GCM)
			sum->values_gcm++;
		else
			sum->values_cbc++;
	}
	return TFS_OK;
}

int tfs_vobject_load(tfs_vobject *o, tfs_vtoken *vt, size_t i, tfs_error *err)
{
	memset(o, 0, sizeof(*o));
	o->index = i;
	o->uuid = tfs_token_object_uuid(vt->tok, i);
	o->path = tfs_token_object_path(vt->tok, i);
	o->cls = o->key_type = o->cert_type = UINT64_MAX;
	vt->summary->objects++;
	tfs_error e;
	size_t got = i;
	int rc = vt->loader != NULL ? tfs_loader_next(vt->loader, &got, &o->obj, &e)
	                            : tfs_token_load_object(&o->obj, vt->tok, i, &e);
	if (got != i) { /* a caller out of step with its loader: a bug */
		tfs_object_free(o->obj);
		o->obj = NULL;
		tfs_error_set(&e, TFS_E_INVALID, TFS_NO_OFFSET, "object %zu loaded out of order", i);
		*err = e;
		return TFS_E_INVALID;
	}
	if (rc == TFS_E_NOMEM)
		goto nomem;
	if (rc == TFS_E_LOCKED) {
		/* A writer past --lock-timeout stops the run, as in dump. */
		*err = e;
		return rc;
	}
	if (rc != TFS_OK)
		return parse_failure(vt, o, &e) == TFS_OK ? TFS_OK : tfs_nomem(err);
	o->cls = ulong_or_none(o->obj, CKA_CLASS);
	o->key_type = ulong_or_none(o->obj, CKA_KEY_TYPE);
	o->cert_type = ulong_or_none(o->obj, CKA_CERTIFICATE_TYPE);
	if (decrypt_values(o, vt->key, vt->summary) == TFS_OK)
		return TFS_OK;
nomem:
	/* Objects are held one at a time, so this one alone did not fit:
	 * say which (a 64 MiB object with large values needs a few times that). */
	tfs_vobject_release(o);
	tfs_nomem(err);
	return tfs_error_where(err, "%s", o->path);
}

void tfs_vobject_release(tfs_vobject *o)
{
	if (o->values != NULL)
		for (size_t k = 0; k < tfs_object_attr_count(o->obj); k++)
			if (o->values[k].owned)
				tfs_secure_free((void *)o->values[k].p, o->values[k].len);
	free(o->values);
	o->values = NULL;
	tfs_object_free(o->obj);
	o->obj = NULL;
}

int tfs_vtoken_load(tfs_vtoken *vt, const tfs_store *store, const tfs_token *tok,
                    const tfs_token_key *key, tfs_error *err)
{
	vt->store = store;
	vt->tok = tok;
	vt->key = key;
	vt->nobjs = tfs_token_object_count(tok);
	vt->objs = calloc(vt->nobjs + 1, sizeof(*vt->objs));
	if (vt->objs == NULL)
		return tfs_nomem(err);
	for (size_t i = 0; i < vt->nobjs; i++) {
		int rc = tfs_vobject_load(&vt->objs[i], vt, i, err);
		if (rc != TFS_OK)
			return rc;
	}
	return TFS_OK;
}

void tfs_vtoken_free(tfs_vtoken *vt)
{
	for (size_t i = 0; i < vt->nobjs; i++)
		tfs_vobject_release(&vt->objs[i]);
	free(vt->objs);
	vt->objs = NULL;
	vt->nobjs = 0;
	free(vt->odd);
	vt->odd = NULL;
	vt->nodd = vt->odd_cap = 0;
}

static long last_index(const tfs_vobject *o, uint64_t type)
{
	if (o->obj == NULL)
		return -1;
	for (size_t k = tfs_object_attr_count(o->obj); k-- > 0;)
		if (tfs_attr_type(tfs_object_attr(o->obj, k)) == type)
			return (long)k;
	return -1;
}

const tfs_attr *tfs_vobject_attr(const tfs_vobject *o, uint64_t type)
{
	long k = last_index(o, type);
	return k < 0 ? NULL : tfs_object_attr(o->obj, (size_t)k);
}

const uint8_t *tfs_vobject_bytes(const tfs_vobject *o, uint64_t type, size_t *len)
{
	long k = last_index(o, type);
	*len = 0;
	if (k < 0 || tfs_attr_kind(tfs_object_attr(o->obj, (size_t)k)) != TFS_KIND_BYTES)
		return NULL;
	const tfs_vvalue *v = &o->values[k];
	if (v->p == NULL && v->len == 0 && !v->encrypted) {
		static const uint8_t empty[1];
		return empty; /* an empty value is known: it is empty */
	}
	*len = v->len;
	return v->p;
}

bool tfs_vobject_ulong(const tfs_vobject *o, uint64_t type, uint64_t *value)
{
	const tfs_attr *a = tfs_vobject_attr(o, type);
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_ULONG)
		return false;
	*value = tfs_attr_ulong(a);
	return true;
}

bool tfs_vobject_bool(const tfs_vobject *o, uint64_t type, bool *value)
{
	const tfs_attr *a = tfs_vobject_attr(o, type);
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_BOOL)
		return false;
	*value = tfs_attr_bool(a);
	return true;
}

const char *tfs_vattr_name(uint64_t type, char buf[24])
{
	const char *n = tfs_name(TFS_NS_CKA, type);
	if (n != NULL)
		return n;
	snprintf(buf, 24, "0x%llx", (unsigned long long)type);
	return buf;
}

int tfs_vfinding(tfs_vtoken *vt, const char *code, tfs_severity sev, const tfs_vobject *o,
                 uint64_t type, const char *fmt, ...)
{
	tfs_location loc = {.path = tfs_token_path(vt->tok), .offset = TFS_NO_OFFSET};
	if (o != NULL) {
		loc.path = o->path;
		loc.object = o->uuid;
		const tfs_attr *a = type != TFS_VNO_ATTR ? tfs_vobject_attr(o, type) : NULL;
		if (type != TFS_VNO_ATTR) {
			loc.has_attr = true;
			loc.attr = type;
		}
		if (a != NULL)
			loc.offset = tfs_attr_offset(a);
	}
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		return TFS_E_NOMEM;
	int rc = tfs_findings_addl(vt->findings, code, sev, &loc, "%s", msg);
	free(msg);
	return rc;
}
