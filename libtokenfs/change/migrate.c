/* tfs_migrate_token: a change of layout under the same token key (see
 * tokenfs/change.h); the work is tfs_change_token's. */
#include "change/change.h"

#include <string.h>

#include "core/error_internal.h"

int tfs_migrate_token(tfs_change_result *res, const char *token_dir,
                      const tfs_migrate_options *o, tfs_error *err)
{
	if (o->to != TFS_LAYOUT_CBC && o->to != TFS_LAYOUT_GCM) {
		memset(res, 0, sizeof(*res));
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "the target layout is cbc or gcm");
	}
	tfs_change c = {
		.pin = {o->so_pin, o->user_pin},
		.pin_len = {o->so_pin_len, o->user_pin_len},
		.need_key = true,
		.values_to = o->to,
		.blobs_to = o->to,
		.keep_other_blob = o->keep_other_blob,
		.dry_run = o->dry_run,
		.lock_timeout_ms = o->lock_timeout_ms,
		.progress = o->progress,
		.problem = o->problem,
		.ctx = o->ctx,
	};
	return tfs_change_token(res, token_dir, &c, err);
}
