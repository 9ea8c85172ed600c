/*
 * Cryptographic checks, with a PIN: every encrypted value decrypts (GCM tag,
 * or CBC padding), and the store uses one layout. The PIN blobs themselves
 * were checked when the token was unlocked (verify.c).
 */
#include "verify/verify_internal.h"

/*
 * The layout a value should have: the PIN blob's when the values agree with
 * it, else the values' majority. A damaged GCM value can pass as CBC (its
 * padding is valid by chance, about 1 time in 256), and so can only be told
 * by being the odd one out; a value that differs from both the blob and the
 * majority is reported on its own.
 */
static tfs_layout expected_layout(const tfs_vtoken *vt)
{
	const tfs_verify_summary *s = vt->summary;
	tfs_layout blob = tfs_token_key_layout(vt->key);
	tfs_layout major = s->values_gcm > s->values_cbc ? TFS_LAYOUT_GCM : TFS_LAYOUT_CBC;
	if (s->values_gcm == 0 && s->values_cbc == 0)
		return blob;
	return major;
}

static int check_odd_layouts(tfs_vtoken *vt)
{
	tfs_layout want = expected_layout(vt), blob = tfs_token_key_layout(vt->key);
	char nb[24];
	for (size_t i = 0; i < vt->nobjs; i++) {
		const tfs_vobject *o = &vt->objs[i];
		for (size_t k = 0; o->obj != NULL && k < tfs_object_attr_count(o->obj); k++) {
			const tfs_vvalue *v = &o->values[k];
			if (!v->owned || v->layout == want || v->layout == blob)
				continue;
			const tfs_attr *a = tfs_object_attr(o->obj, k);
			tfs_location loc = {.path = o->path, .offset = tfs_attr_offset(a), .object = o->uuid,
			                    .has_attr = true, .attr = tfs_attr_type(a)};
			if (tfs_findings_addl(vt->findings, "value.odd-layout", TFS_SEV_ERROR, &loc,
			                      "%s decrypts only as %s in a %s store: most likely a damaged "
			                      "%s value whose padding matched by chance",
			                      tfs_vattr_name(tfs_attr_type(a), nb), tfs_layout_name(v->layout),
			                      tfs_layout_name(want), tfs_layout_name(want)) != TFS_OK)
				return TFS_E_NOMEM;
		}
	}
	return TFS_OK;
}

int tfs_check_crypto(tfs_vtoken *vt)
{
	if (vt->key == NULL)
		return TFS_OK;
	char nb[24];
	for (size_t i = 0; i < vt->nobjs; i++) {
		const tfs_vobject *o = &vt->objs[i];
		if (o->obj == NULL)
			continue;
		for (size_t k = 0; k < tfs_object_attr_count(o->obj); k++) {
			if (!o->values[k].failed)
				continue;
			const tfs_attr *a = tfs_object_attr(o->obj, k);
			tfs_location loc = {.path = o->path, .offset = tfs_attr_offset(a), .object = o->uuid,
			                    .has_attr = true, .attr = tfs_attr_type(a)};
			if (tfs_findings_addl(vt->findings, "value.decrypt-failed", TFS_SEV_ERROR, &loc,
			                      "%s does not decrypt with the token key (no GCM tag matches "
			                      "and the CBC padding is invalid): the value is damaged",
			                      tfs_vattr_name(tfs_attr_type(a), nb)) != TFS_OK)
				return TFS_E_NOMEM;
		}
	}
	/* One layout per store: a mix is what an interrupted migration leaves. */
	const tfs_verify_summary *s = vt->summary;
	tfs_layout blob = tfs_token_key_layout(vt->key);
	bool mixed = (s->values_cbc > 0 && s->values_gcm > 0) ||
	             (blob == TFS_LAYOUT_CBC && s->values_gcm > 0) ||
	             (blob == TFS_LAYOUT_GCM && s->values_cbc > 0);
	if (mixed && tfs_vfinding(vt, "store.mixed-layout", TFS_SEV_WARNING, NULL, TFS_VNO_ATTR,
	                          "mixed encryption layouts: PIN blob %s, %zu CBC and %zu GCM values; "
	                          "an interrupted migration leaves this", tfs_layout_name(blob),
	                          s->values_cbc, s->values_gcm) != TFS_OK)
		return TFS_E_NOMEM;
	return mixed ? check_odd_layouts(vt) : TFS_OK;
}
