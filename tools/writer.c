/* Shared by the write commands: see writer.h. */
#include "writer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokenfs/txn.h"

int writer_check_softhsm(const cli_common *co)
{
	const char *cmd = co->cmd;
	bool force = co->force;
	if (co->dry_run)
		return TFS_EXIT_OK;
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
	return cli_each_token(co, path, false, fn, ctx);
}

void writer_progress(const char *cmd, const char *label, const char *phase, size_t done,
                     size_t total)
{
	static struct timespec last;
	static int tty = -1; /* asked once: progress comes thousands of times */
	if (tty < 0)
		tty = isatty(STDERR_FILENO);
	if (!tty)
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

json_object *writer_change_json(const tfs_token *tok, const tfs_change_result *r, int status)
{
	json_object *j = json_object_new_object(), *blobs = json_object_new_object();
	json_object_object_add(j, "dir", cli_json_string(tfs_token_path(tok)));
	json_object_object_add(j, "label", cli_json_string(tfs_token_label(tok)));
	json_object_object_add(j, "serial", cli_json_string(tfs_token_serial(tok)));
	json_object_object_add(j, "objects", json_object_new_uint64(r->objects));
	json_object_object_add(j, "objects_rewritten", json_object_new_uint64(r->objects_rewritten));
	json_object_object_add(j, "values_reencrypted", json_object_new_uint64(r->values_reencrypted));
	json_object_object_add(j, "values_already", json_object_new_uint64(r->values_already));
	json_object_object_add(j, "problems", json_object_new_uint64(r->problems));
	json_object_object_add(blobs, "so", json_object_new_string(tfs_blob_action_name(r->blob[TFS_PIN_SO])));
	json_object_object_add(blobs, "user", json_object_new_string(tfs_blob_action_name(r->blob[TFS_PIN_USER])));
	json_object_object_add(j, "blobs", blobs);
	json_object_object_add(j, "so_pin_set", json_object_new_boolean(r->pin_set[TFS_PIN_SO]));
	json_object_object_add(j, "user_pin_set", json_object_new_boolean(r->pin_set[TFS_PIN_USER]));
	json_object_object_add(j, "token_key_rotated", json_object_new_boolean(r->key_rotated));
	json_object_object_add(j, "label_set", json_object_new_boolean(r->label_set));
	json_object_object_add(j, "committed", json_object_new_boolean(r->txn.committed));
	json_object_object_add(j, "files_written", json_object_new_uint64(r->txn.files_written));
	json_object_object_add(j, "bytes_written", json_object_new_uint64(r->txn.bytes_written));
	json_object_object_add(j, "journal_bytes", json_object_new_uint64(r->txn.journal_bytes));
	json_object_object_add(j, "pending", json_object_new_boolean(r->pending));
	json_object_object_add(j, "recovered", json_object_new_string(tfs_recovery_name(r->txn.recovered)));
	json_object_object_add(j, "seal", json_object_new_string(tfs_seal_outcome_name(r->seal)));
	json_object_object_add(j, "exit", json_object_new_int(status));
	return j;
}

void writer_print_json(const char *cmd, json_object *extra, json_object *tokens, int status)
{
	json_object *doc = json_object_new_object();
	json_object_object_add(doc, "format_version", json_object_new_int(1));
	json_object_object_add(doc, "command", json_object_new_string(cmd));
	if (extra != NULL) {
		json_object_object_foreach(extra, k, v)
			json_object_object_add(doc, k, json_object_get(v));
		json_object_put(extra);
	}
	json_object_object_add(doc, "tokens", tokens);
	json_object_object_add(doc, "exit", json_object_new_int(status));
	puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
}

void writer_on_progress(void *ctx, const char *phase, size_t done, size_t total)
{
	const writer_change_cmd *w = ctx;
	writer_progress(w->co->cmd, w->label, phase, done, total);
}

void writer_on_problem(void *ctx, const tfs_error *err)
{
	(void)ctx;
	cli_report(err);
}

/* Whether this token directory was already changed in this run (the same
 * token named twice, or a tokendir and one of its tokens): a second change
 * would run with PINs the first one replaced. */
static bool seen_before(writer_change_cmd *w, const tfs_token *tok)
{
	char *real = realpath(tfs_token_path(tok), NULL);
	if (real == NULL)
		return false;
	for (size_t i = 0; i < w->nseen; i++)
		if (strcmp(w->seen[i], real) == 0) {
			free(real);
			return true;
		}
	char **p = realloc(w->seen, (w->nseen + 1) * sizeof(*p));
	if (p == NULL) {
		free(real);
		return false;
	}
	w->seen = p;
	w->seen[w->nseen++] = real;
	return false;
}

static int change_one(void *ctx, const tfs_token *tok)
{
	writer_change_cmd *w = ctx;
	tfs_change_result r;
	tfs_error err;
	if (seen_before(w, tok)) {
		cli_warning("%s: %s is named twice; changed once", w->co->cmd, tfs_token_path(tok));
		return TFS_EXIT_OK;
	}
	w->label = tfs_token_label(tok);
	int rc = w->change(w->ctx, tok, &r, &err);
	writer_progress(w->co->cmd, w->label, "", 1, 1);
	int status = writer_exit_code(rc);
	if (rc != TFS_OK)
		cli_report(&err);
	if (w->json)
		json_object_array_add(w->tokens, writer_change_json(tok, &r, status));
	else if (rc == TFS_OK)
		w->render(w->ctx, tok, &r);
	return status;
}

int writer_run_change(writer_change_cmd *w, char **paths, int npaths, json_object *extra)
{
	int status = TFS_EXIT_OK;
	w->tokens = json_object_new_array();
	for (int i = 0; i < npaths; i++) {
		int s = writer_each_token(w->co, paths[i], change_one, w);
		status = s > status ? s : status;
	}
	int sel = cli_check_selection(w->co);
	status = sel > status ? sel : status;
	for (size_t i = 0; i < w->nseen; i++)
		free(w->seen[i]);
	free(w->seen);
	if (w->json) {
		json_object_object_add(extra, "dry_run", json_object_new_boolean(w->co->dry_run));
		writer_print_json(w->co->cmd, extra, w->tokens, status);
	} else {
		json_object_put(extra);
		json_object_put(w->tokens);
	}
	if (fflush(stdout) != 0) {
		cli_error("%s: writing the output failed", w->co->cmd);
		status = TFS_EXIT_USAGE;
	}
	return status;
}
