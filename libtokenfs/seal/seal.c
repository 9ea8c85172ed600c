/* PLACEHOLDER until the seal module lands; never committed. */
#include "core/error_internal.h"
#include "verify/verify_internal.h"
int tfs_seal_write(tfs_vtoken *vt, const char *path, tfs_error *err) { (void)vt; (void)path; return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "not yet"); }
int tfs_seal_check(tfs_vtoken *vt, const char *path, tfs_error *err) { (void)vt; (void)path; return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "not yet"); }
