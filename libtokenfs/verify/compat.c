/*
 * Which SoftHSM can load the token as it is: mechanism sets (kind 5) need
 * 2.4.0, GCM values or blobs need a build with pull request #627, anything
 * else loads in 2.0.0.
 */
#include "verify/verify_internal.h"

int tfs_check_compat_object(tfs_vtoken *vt, const tfs_vobject *o)
{
	const tfs_object *obj = o->obj;
	for (size_t k = 0; obj != NULL && !vt->mechs && k < tfs_object_attr_count(obj); k++)
		vt->mechs |= tfs_attr_kind(tfs_object_attr(obj, k)) == TFS_KIND_MECHS;
	return TFS_OK;
}

int tfs_check_compat_end(tfs_vtoken *vt)
{
	vt->summary->min_softhsm = vt->mechs ? "2.4.0" : "2.0.0";
	/* Without the key nothing tells CBC from GCM values apart. */
	if (vt->summary->values_gcm > 0 ||
	    (vt->key != NULL && tfs_token_key_layout(vt->key) == TFS_LAYOUT_GCM))
		vt->summary->needs_gcm = 1;
	else
		vt->summary->needs_gcm = vt->key == NULL ? -1 : 0;
	return TFS_OK;
}
