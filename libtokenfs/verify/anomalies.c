/*
 * Anomalies of a well-formed object: SoftHSM loads it, but it is not what
 * SoftHSM writes in normal operation. One check, two users: verify-integrity
 * reports these among its structure findings, and dump reports them while
 * dumping (tokenfs/verify.h, tfs_object_anomalies).
 */
#include "verify/verify_internal.h"

#include <stdio.h>

#include "tokenfs/names.h"

int tfs_check_anomalies(tfs_findings *list, const char *path, const char *uuid,
                        const tfs_object *obj)
{
	size_t n = tfs_object_attr_count(obj);
	if (n == 0) {
		/* The 8 bytes of the generation counter are all there is. */
		tfs_location loc = {.path = path, .offset = 8, .object = uuid};
		return tfs_findings_addl(list, "object.generation-only", TFS_SEV_WARNING, &loc,
		                         "generation-only object file: no attributes (a creation cut "
		                         "short, or a torn write)");
	}
	/* Each repeat where it stands (the one SoftHSM uses), naming the one
	 * it hides. */
	for (size_t k = 0; k < n; k++) {
		const tfs_attr *a = tfs_object_attr(obj, k);
		if (!tfs_attr_is_shadowed(a))
			continue;
		const tfs_attr *again = NULL;
		for (size_t j = k + 1; j < n && again == NULL; j++)
			if (tfs_attr_type(tfs_object_attr(obj, j)) == tfs_attr_type(a))
				again = tfs_object_attr(obj, j);
		if (again == NULL)
			continue;
		char nb[24];
		tfs_location loc = {.path = path, .offset = tfs_attr_offset(again), .object = uuid,
		                    .has_attr = true, .attr = tfs_attr_type(a)};
		int rc = tfs_findings_addl(list, "object.duplicate-attribute", TFS_SEV_WARNING, &loc,
		                           "attribute %s repeats the one at offset %llu; SoftHSM uses "
		                           "the last one", tfs_vattr_name(tfs_attr_type(a), nb),
		                           (unsigned long long)tfs_attr_offset(a));
		if (rc != TFS_OK)
			return rc;
	}
	return TFS_OK;
}

int tfs_object_anomalies(const tfs_object *obj, const char *path, const char *uuid,
                         tfs_finding_fn fn, void *ctx)
{
	tfs_findings list = {0};
	int rc = tfs_check_anomalies(&list, path, uuid, obj);
	if (rc != TFS_OK) {
		tfs_findings_free(&list);
		return -1;
	}
	for (size_t i = 0; fn != NULL && i < list.count; i++)
		fn(ctx, &list.items[i]);
	int count = (int)list.count;
	tfs_findings_free(&list);
	return count;
}
