/* Shared by the write commands: see writer.h. */
#include "writer.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tokenfs/txn.h"

int writer_check_softhsm(const char *cmd, bool force)
{
	tfs_process *p;
	size_t n, unreadable;
	tfs_error err;
	if (tfs_softhsm_users(&p, &n, &unreadable, &err) != TFS_OK) {
		cli_report(&err);
		return force ? TFS_EXIT_OK : TFS_EXIT_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		if (force)
			cli_warning("%s: process %ld (%s) has SoftHSM loaded; going on because of --force",
			            cmd, p[i].pid, p[i].comm);
		else
			cli_error("%s: process %ld (%s) has SoftHSM loaded", cmd, p[i].pid, p[i].comm);
	}
	if (unreadable > 0 && !force)
		cli_warning("%s: the memory maps of %zu process%s could not be read, so a SoftHSM "
		            "in them would go unnoticed", cmd, unreadable, unreadable == 1 ? "" : "es");
	tfs_softhsm_users_free(p);
	if (n > 0 && !force) {
		cli_error("%s: a running SoftHSM writes its cached objects back over changes made "
		          "beside it: stop every program using SoftHSM and retry (--force only if you "
		          "know these processes do not use this store); nothing was written", cmd);
		return TFS_EXIT_USAGE;
	}
	return TFS_EXIT_OK;
}

int writer_exit_code(int rc)
{
	if (rc == TFS_OK)
		return TFS_EXIT_OK;
	return rc == TFS_E_DAMAGED ? TFS_EXIT_PROBLEM : TFS_EXIT_USAGE;
}

int writer_each_token(cli_common *co, const char *path, writer_token_fn fn, void *ctx)
{
	tfs_open_options oo = {.lock_timeout_ms = co->lock_ms};
	tfs_store *store;
	tfs_error err;
	if (tfs_store_open(&store, path, &oo, &err) != TFS_OK) {
		cli_report_open(co, path, &err);
		return TFS_EXIT_USAGE;
	}
	int status = TFS_EXIT_OK;
	if (tfs_store_kind(store) == TFS_PATH_OBJECT_FILE) {
		cli_error("%s: %s is one object file; give its token directory or the tokendir", co->cmd,
		          path);
		tfs_store_free(store);
		return TFS_EXIT_USAGE;
	}
	/* One token failing does not stop the others: each is its own
	 * transaction, and each failure is reported. */
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		if (!cli_token_selected(co, tok))
			continue;
		int s = fn(ctx, tok);
		status = s > status ? s : status;
	}
	tfs_store_free(store);
	return status;
}

void writer_progress(const char *cmd, const char *label, const char *phase, size_t done,
                     size_t total)
{
	static struct timespec last;
	if (!isatty(STDERR_FILENO))
		return;
	if (done >= total) {
		fprintf(stderr, "\r\033[K");
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000;
	if (ms < 100)
		return;
	last = now;
	char lb[200];
	fprintf(stderr, "\rtokenfs: %s '%s': %s %zu/%zu objects\033[K", cmd,
	        cli_safe(label, lb, sizeof(lb)), phase, done, total);
}
