/*
 * Cryptographic checks, with a PIN: every encrypted value decrypts (GCM tag,
 * or CBC padding), and the store uses one layout. The PIN blobs themselves
 * were checked when the token was unlocked (verify.c).
 */
#include "verify/verify_internal.h"

#include <stdlib.h>

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
	tfs_layout want = expected_layout(vt);
	char nb[24];
	for (size_t i = 0; i < vt->nodd; i++) {
		const tfs_vodd *v = &vt->odd[i];
		if (v->layout == want)
			continue;
		tfs_location loc = {.path = tfs_token_object_path(vt->tok, v->obj), .offset = v->offset,
		                    .object = tfs_token_object_uuid(vt->tok, v->obj),
		                    .has_attr = true, .attr = v->type};
		if (tfs_findings_addl(vt->findings, "value.odd-layout", TFS_SEV_ERROR, &loc,
		                      "%s decrypts only as %s in a %s store: most likely a damaged "
		                      "%s value whose padding matched by chance",
		                      tfs_vattr_name(v->type, nb), tfs_layout_name(v->layout),
		                      tfs_layout_name(want), tfs_layout_name(want)) != TFS_OK)
			return TFS_E_NOMEM;
	}
	return TFS_OK;
}

/* Remembers a value whose layout is not the blob's: whether it is odd is
 * known only once the majority is (check_odd_layouts). */
static int keep_odd(tfs_vtoken *vt, const tfs_vobject *o, const tfs_attr *a, tfs_layout layout)
{
	if (vt->nodd == vt->odd_cap) {
		size_t cap = vt->odd_cap ? vt->odd_cap * 2 : 16;
		tfs_vodd *p = realloc(vt->odd, cap * sizeof(*p));
		if (p == NULL)
			return TFS_E_NOMEM;
		vt->odd = p;
		vt->odd_cap = cap;
	}
	vt->odd[vt->nodd++] = (tfs_vodd){.obj = o->index, .offset = tfs_attr_offset(a),
	                                 .type = tfs_attr_type(a), .layout = layout};
	return TFS_OK;
}

int tfs_check_crypto_object(tfs_vtoken *vt, const tfs_vobject *o)
{
	if (vt->key == NULL || o->obj == NULL)
		return TFS_OK;
	char nb[24];
	tfs_layout blob = tfs_token_key_layout(vt->key);
	for (size_t k = 0; k < tfs_object_attr_count(o->obj); k++) {
		const tfs_vvalue *v = &o->values[k];
		const tfs_attr *a = tfs_object_attr(o->obj, k);
		if (v->owned && v->layout != blob && keep_odd(vt, o, a, v->layout) != TFS_OK)
			return TFS_E_NOMEM;
		if (!v->failed)
			continue;
		tfs_location loc = {.path = o->path, .offset = tfs_attr_offset(a), .object = o->uuid,
		                    .has_attr = true, .attr = tfs_attr_type(a)};
		if (tfs_findings_addl(vt->findings, "value.decrypt-failed", TFS_SEV_ERROR, &loc,
		                      "%s does not decrypt with the token key (no GCM tag matches "
		                      "and the CBC padding is invalid): the value is damaged",
		                      tfs_vattr_name(tfs_attr_type(a), nb)) != TFS_OK)
			return TFS_E_NOMEM;
	}
	return TFS_OK;
}

int tfs_check_crypto_end(tfs_vtoken *vt)
{
	if (vt->key == NULL)
		return TFS_OK;
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
