/*
 * Structure checks, no PIN needed: what SoftHSM needs to load each object
 * and what it always writes; permissions; encrypted values that fit neither
 * layout. Parse failures were reported when the token was loaded.
 */
#include "verify/verify_internal.h"

#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "tokenfs/names.h"

#define ADD(...)                                              \
	do {                                                  \
		if (tfs_vfinding(vt, __VA_ARGS__) != TFS_OK)  \
			return TFS_E_NOMEM;                   \
	} while (0)

/* The kind SoftHSM writes for well-known attributes; a different kind means
 * the file was not written by SoftHSM. */
static const struct {
	CK_ATTRIBUTE_TYPE type;
	tfs_kind kind;
} kinds[] = {
	{CKA_CLASS, TFS_KIND_ULONG}, {CKA_KEY_TYPE, TFS_KIND_ULONG},
	{CKA_CERTIFICATE_TYPE, TFS_KIND_ULONG}, {CKA_VALUE_LEN, TFS_KIND_ULONG},
	{CKA_MODULUS_BITS, TFS_KIND_ULONG}, {CKA_TOKEN, TFS_KIND_BOOL},
	{CKA_PRIVATE, TFS_KIND_BOOL}, {CKA_SENSITIVE, TFS_KIND_BOOL},
	{CKA_EXTRACTABLE, TFS_KIND_BOOL}, {CKA_ALWAYS_SENSITIVE, TFS_KIND_BOOL},
	{CKA_NEVER_EXTRACTABLE, TFS_KIND_BOOL}, {CKA_MODIFIABLE, TFS_KIND_BOOL},
	{CKA_LABEL, TFS_KIND_BYTES}, {CKA_ID, TFS_KIND_BYTES}, {CKA_VALUE, TFS_KIND_BYTES},
	{CKA_MODULUS, TFS_KIND_BYTES}, {CKA_EC_PARAMS, TFS_KIND_BYTES},
	{CKA_EC_POINT, TFS_KIND_BYTES}, {CKA_WRAP_TEMPLATE, TFS_KIND_MAP},
	{CKA_UNWRAP_TEMPLATE, TFS_KIND_MAP}, {CKA_ALLOWED_MECHANISMS, TFS_KIND_MECHS},
};

/* Attributes SoftHSM 2.x writes for every object of a class (from its
 * P11Object classes): missing ones mean a damaged or foreign file. */
static const CK_ATTRIBUTE_TYPE common_attrs[] = {CKA_CLASS, CKA_TOKEN, CKA_PRIVATE,
                                                 CKA_MODIFIABLE, CKA_LABEL};
static const CK_ATTRIBUTE_TYPE key_attrs[] = {CKA_KEY_TYPE, CKA_ID, CKA_DERIVE, CKA_LOCAL,
                                              CKA_KEY_GEN_MECHANISM};
static const CK_ATTRIBUTE_TYPE secret_attrs[] = {CKA_SENSITIVE, CKA_EXTRACTABLE,
                                                 CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
                                                 CKA_VALUE};
static const CK_ATTRIBUTE_TYPE private_attrs[] = {CKA_SENSITIVE, CKA_EXTRACTABLE,
                                                  CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
                                                  CKA_SUBJECT};
static const CK_ATTRIBUTE_TYPE public_attrs[] = {CKA_SUBJECT};
static const CK_ATTRIBUTE_TYPE cert_attrs[] = {CKA_CERTIFICATE_TYPE, CKA_VALUE};
static const CK_ATTRIBUTE_TYPE data_attrs[] = {CKA_APPLICATION, CKA_VALUE};

static int require(tfs_vtoken *vt, const tfs_vobject *o, const CK_ATTRIBUTE_TYPE *list, size_t n)
{
	char nb[24];
	for (size_t i = 0; i < n; i++)
		if (tfs_vobject_attr(o, list[i]) == NULL)
			ADD("object.missing-attribute", TFS_SEV_ERROR, o, TFS_VNO_ATTR,
			    "%s is missing; SoftHSM writes it for every object of this class",
			    tfs_vattr_name(list[i], nb));
	return TFS_OK;
}

#define REQUIRE(list) require(vt, o, list, sizeof(list) / sizeof(list[0]))

static int check_required(tfs_vtoken *vt, const tfs_vobject *o)
{
	int rc = REQUIRE(common_attrs);
	if (rc == TFS_OK && (o->cls == CKO_SECRET_KEY || o->cls == CKO_PRIVATE_KEY ||
	                     o->cls == CKO_PUBLIC_KEY))
		rc = REQUIRE(key_attrs);
	if (rc == TFS_OK && o->cls == CKO_SECRET_KEY)
		rc = REQUIRE(secret_attrs);
	if (rc == TFS_OK && o->cls == CKO_PRIVATE_KEY)
		rc = REQUIRE(private_attrs);
	if (rc == TFS_OK && o->cls == CKO_PUBLIC_KEY)
		rc = REQUIRE(public_attrs);
	if (rc == TFS_OK && o->cls == CKO_CERTIFICATE)
		rc = REQUIRE(cert_attrs);
	if (rc == TFS_OK && o->cls == CKO_DATA)
		rc = REQUIRE(data_attrs);
	return rc;
}

/* A ulong whose value no PKCS#11 version defines (vendor values excepted). */
static int check_value(tfs_vtoken *vt, const tfs_vobject *o, uint64_t type, tfs_name_space ns)
{
	uint64_t v;
	char nb[24];
	if (!tfs_vobject_ulong(o, type, &v) || v >= CKA_VENDOR_DEFINED || tfs_name(ns, v) != NULL)
		return TFS_OK;
	ADD("object.unknown-value", TFS_SEV_WARNING, o, type,
	    "%s is 0x%llx, which no PKCS#11 version defines", tfs_vattr_name(type, nb),
	    (unsigned long long)v);
	return TFS_OK;
}

/* The first attribute that carries o's key (or a certificate's or data
 * object's value) and is absent, or TFS_VNO_ATTR. */
static uint64_t missing_material(const tfs_vobject *o)
{
	uint64_t want[5];
	size_t n = tfs_key_material_attrs(o, want);
	if (o->cls == CKO_CERTIFICATE || o->cls == CKO_DATA)
		want[n++] = CKA_VALUE;
	for (size_t i = 0; i < n; i++)
		if (tfs_vobject_attr(o, want[i]) == NULL)
			return want[i];
	return TFS_VNO_ATTR;
}

/*
 * A torn write that stops exactly between two attributes leaves a file that
 * parses. SoftHSM (2.4 and later) writes every object with its class's full
 * template in ascending type order, ending with CKA_ALLOWED_MECHANISMS for
 * keys and CKA_DESTROYABLE for certificates and data objects; a file whose
 * attributes stop short of that one was cut. SoftHSM 2.6.1 loads such a
 * file and, at its first access (a mere C_FindObjects), writes it back with
 * every missing attribute at its default, byte strings empty: when the key
 * itself is among them the key is gone for good (object.torn, an error);
 * otherwise only defaults are filled in, which is also what an object from
 * SoftHSM before 2.4 looks like (object.ends-early, a warning). Sets *torn
 * when it reported.
 */
static int check_cut_at_boundary(tfs_vtoken *vt, const tfs_vobject *o, bool *torn)
{
	*torn = false;
	uint64_t last;
	if (o->cls == CKO_SECRET_KEY || o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY)
		last = CKA_ALLOWED_MECHANISMS;
	else if (o->cls == CKO_CERTIFICATE || o->cls == CKO_DATA)
		last = CKA_DESTROYABLE;
	else
		return TFS_OK;
	size_t n = tfs_object_attr_count(o->obj);
	const tfs_attr *tail = tfs_object_attr(o->obj, n - 1);
	if (tfs_vobject_attr(o, last) != NULL || tfs_attr_type(tail) >= last)
		return TFS_OK;
	char nb[24], lb[24], mb[24];
	tfs_location loc = {.path = o->path, .offset = tfs_attr_offset(tail), .object = o->uuid};
	*torn = true;
	uint64_t lost = missing_material(o);
	if (lost != TFS_VNO_ATTR)
		return tfs_findings_addl(vt->findings, "object.torn", TFS_SEV_ERROR, &loc,
		                         "torn write: the file ends after %s, before %s and the "
		                         "other attributes SoftHSM writes after it; %s is among them. "
		                         "SoftHSM writes the object back with it empty at its next "
		                         "access: what it held is lost", tfs_vattr_name(tfs_attr_type(tail), nb),
		                         tfs_vattr_name(last, lb), tfs_vattr_name(lost, mb));
	return tfs_findings_addl(vt->findings, "object.ends-early", TFS_SEV_WARNING, &loc,
	                         "the file ends after %s, before %s and the other attributes "
	                         "SoftHSM writes after it: a torn write, or an object from SoftHSM "
	                         "older than 2.4; its key attributes are there, and SoftHSM fills "
	                         "in the rest with defaults", tfs_vattr_name(tfs_attr_type(tail), nb),
	                         tfs_vattr_name(last, lb));
}

static int check_object(tfs_vtoken *vt, const tfs_vobject *o)
{
	char nb[24];
	size_t n = tfs_object_attr_count(o->obj);
	/* Generation-only files and repeated attributes: shared with dump. */
	if (tfs_check_anomalies(vt->findings, o->path, o->uuid, o->obj) != TFS_OK)
		return TFS_E_NOMEM;
	if (n == 0)
		return TFS_OK;
	bool torn;
	if (check_cut_at_boundary(vt, o, &torn) != TFS_OK)
		return TFS_E_NOMEM;
	for (size_t k = 0; k < n; k++) {
		const tfs_attr *a = tfs_object_attr(o->obj, k);
		uint64_t type = tfs_attr_type(a);
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (kinds[i].type == type && kinds[i].kind != tfs_attr_kind(a))
				ADD("object.wrong-kind", TFS_SEV_ERROR, o, type, "%s is stored as %s; SoftHSM writes %s",
				    tfs_vattr_name(type, nb), tfs_kind_name(tfs_attr_kind(a)),
				    tfs_kind_name(kinds[i].kind));
		size_t len;
		(void)tfs_attr_bytes(a, &len);
		/* GCM needs IV + tag (32), CBC IV + one block (32). */
		if (tfs_object_attr_encrypted(o->obj, a) && len < 32)
			ADD("value.bad-length", TFS_SEV_ERROR, o, type,
			    "encrypted %s is %zu bytes, too short for either layout (32 at least)",
			    tfs_vattr_name(type, nb), len);
	}
	/* A torn object lacks its tail; listing each missing attribute would
	 * only repeat that. */
	int rc = torn ? TFS_OK : check_required(vt, o);
	if (rc == TFS_OK)
		rc = check_value(vt, o, CKA_CLASS, TFS_NS_CKO);
	if (rc == TFS_OK)
		rc = check_value(vt, o, CKA_KEY_TYPE, TFS_NS_CKK);
	if (rc == TFS_OK)
		rc = check_value(vt, o, CKA_CERTIFICATE_TYPE, TFS_NS_CKC);
	return rc;
}

/* token.object must hold what SoftHSM needs to present the token. */
static int check_metadata(tfs_vtoken *vt)
{
	const tfs_object *meta = tfs_token_metadata(vt->tok);
	if (meta == NULL)
		return TFS_OK; /* reported by the store reader */
	static const struct {
		uint64_t type;
		tfs_kind kind;
		size_t len; /* 0: any */
		const char *name;
	} want[] = {
		{TFS_CKA_OS_TOKENLABEL, TFS_KIND_BYTES, 32, "CKA_OS_TOKENLABEL"},
		{TFS_CKA_OS_TOKENSERIAL, TFS_KIND_BYTES, 16, "CKA_OS_TOKENSERIAL"},
		{TFS_CKA_OS_TOKENFLAGS, TFS_KIND_ULONG, 0, "CKA_OS_TOKENFLAGS"},
		{TFS_CKA_OS_SOPIN, TFS_KIND_BYTES, TFS_PIN_BLOB_LEN, "CKA_OS_SOPIN"},
	};
	char path[4096];
	snprintf(path, sizeof(path), "%s/token.object", tfs_token_path(vt->tok));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const tfs_attr *a = tfs_object_find(meta, want[i].type);
		size_t len = 0;
		if (a != NULL)
			(void)tfs_attr_bytes(a, &len);
		tfs_location loc = {.path = path, .offset = a ? tfs_attr_offset(a) : TFS_NO_OFFSET,
		                    .has_attr = true, .attr = want[i].type};
		const char *why = a == NULL ? "is missing"
		                : tfs_attr_kind(a) != want[i].kind ? "has the wrong kind"
		                : want[i].len != 0 && len != want[i].len ? "has the wrong length" : NULL;
		if (why != NULL && tfs_findings_addl(vt->findings, "token.bad-metadata", TFS_SEV_ERROR, &loc,
		                                     "%s %s; SoftHSM cannot present this token", want[i].name,
		                                     why) != TFS_OK)
			return TFS_E_NOMEM;
	}
	uint64_t flags;
	size_t blob_len;
	if (tfs_token_flags(vt->tok, &flags) && (flags & CKF_USER_PIN_INITIALIZED) &&
	    tfs_token_pin_blob(vt->tok, TFS_PIN_USER, &blob_len) == NULL) {
		tfs_location loc = {.path = path, .offset = TFS_NO_OFFSET};
		if (tfs_findings_addl(vt->findings, "token.bad-metadata", TFS_SEV_ERROR, &loc,
		                      "flags say the user PIN is set, but there is no user PIN blob") != TFS_OK)
			return TFS_E_NOMEM;
	}
	return TFS_OK;
}

/* SoftHSM 2.6 creates files 0600 and directories 0700 (2.7: objectstore.umask,
 * default 0077). Anything readable by group or others exposes keys stored in
 * plaintext and the ciphertext of the rest to offline attack. */
static int check_permissions(tfs_vtoken *vt)
{
	const tfs_store *s = vt->store;
	const char *dir = tfs_token_path(vt->tok);
	tfs_stat dst;
	tfs_error e;
	if (s->kind == TFS_PATH_OBJECT_FILE || s->fs->ops->stat(s->fs, dir, &dst, &e) != TFS_OK)
		return TFS_OK;
	tfs_dirent *ents;
	size_t n;
	if (s->fs->ops->list(s->fs, dir, NULL, &ents, &n, &e) != TFS_OK)
		return e.code == TFS_E_NOMEM ? TFS_E_NOMEM : TFS_OK;
	int rc = TFS_OK;
	for (size_t i = 0; i <= n && rc == TFS_OK; i++) {
		const tfs_stat *st = i < n ? &ents[i].st : &dst;
		if (st->type == TFS_ENT_SYMLINK)
			continue;
		char *path = NULL;
		if (i < n ? asprintf(&path, "%s/%s", dir, ents[i].name) < 0 : (path = strdup(dir)) == NULL) {
			rc = TFS_E_NOMEM;
			break;
		}
		uint32_t want = st->type == TFS_ENT_DIR ? 0700 : 0600;
		tfs_location loc = {.path = path, .offset = TFS_NO_OFFSET};
		if (st->mode & 0077)
			rc = tfs_findings_addl(vt->findings, "perm.exposed", TFS_SEV_WARNING, &loc,
			                       "mode %04o lets group or others %s it; SoftHSM uses %04o",
			                       st->mode, st->mode & 0022 ? "change" : "read", want);
		else if (st->mode != want && !(st->type == TFS_ENT_FILE && st->mode == 0400))
			rc = tfs_findings_addl(vt->findings, "perm.unusual", TFS_SEV_INFO, &loc,
			                       "mode %04o; SoftHSM creates %04o", st->mode, want);
		if (rc == TFS_OK && st->uid != dst.uid)
			rc = tfs_findings_addl(vt->findings, "perm.owner", TFS_SEV_INFO, &loc,
			                       "owned by uid %u, the token directory by uid %u", st->uid, dst.uid);
		free(path);
	}
	tfs_dirents_free(ents, n);
	return rc;
}

int tfs_check_structure_token(tfs_vtoken *vt)
{
	int rc = check_metadata(vt);
	return rc == TFS_OK ? check_permissions(vt) : rc;
}

int tfs_check_structure_object(tfs_vtoken *vt, const tfs_vobject *o)
{
	return o->obj != NULL ? check_object(vt, o) : TFS_OK;
}
