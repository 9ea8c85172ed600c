/*
 * What an interrupted write-engine transaction left in a token directory, as
 * the read-only store reader sees it (docs/writes.md). A committed journal
 * means the token's state is the new one: the reader then reads each staged
 * file in place of its target, so dump and verify show what recovery will
 * make of the token, and a key rotation cut short never looks like objects
 * that do not decrypt. Staged files without a journal were never committed
 * and are ignored. Either way the reader only reports; recovery is a write.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"
#include "txn/journal.h"
#include "tokenfs/txn.h"

bool tfs_pending_is_txn_file(const char *name)
{
	return strcmp(name, TFS_TXN_JOURNAL) == 0 || strcmp(name, TFS_TXN_JOURNAL_TMP) == 0 ||
	       tfs_journal_is_staged_name(name);
}

int tfs_pending_scan(tfs_store *store, const char *tokpath, const tfs_dirent *ents, size_t n,
                     bool *overlay, tfs_error *err)
{
	*overlay = false;
	size_t staged = 0;
	for (size_t i = 0; i < n; i++)
		staged += ents[i].st.type == TFS_ENT_FILE && tfs_journal_is_staged_name(ents[i].name);
	bool journal = tfs_dirents_have(ents, n, TFS_TXN_JOURNAL, TFS_ENT_FILE);
	if (!journal) {
		if ((staged > 0 || tfs_dirents_have(ents, n, TFS_TXN_JOURNAL_TMP, TFS_ENT_FILE)) &&
		    tfs_findings_add(&store->findings, "token.txn-leftover", TFS_SEV_INFO, tokpath,
		                     TFS_NO_OFFSET, "%zu staged file%s of a tokenfs transaction that never "
		                     "committed: ignored here; 'tokenfs recover' removes them", staged,
		                     staged == 1 ? "" : "s") != TFS_OK)
			return tfs_nomem(err);
		return TFS_OK;
	}
	char *path = NULL;
	if (asprintf(&path, "%s/%s", tokpath, TFS_TXN_JOURNAL) < 0)
		return tfs_nomem(err);
	uint8_t *data = NULL;
	size_t size = 0;
	tfs_journal_entry *e = NULL;
	size_t count = 0;
	tfs_error je;
	int rc = store->fs->ops->read(store->fs, path, NULL, &data, &size, &je);
	if (rc == TFS_OK)
		rc = tfs_journal_parse(&e, &count, data, size, &je);
	free(data);
	free(e);
	if (rc == TFS_E_NOMEM) {
		free(path);
		return tfs_nomem(err);
	}
	if (rc != TFS_OK) {
		tfs_error_where(&je, "%s", path);
		rc = tfs_findings_add(&store->findings, "token.txn-journal-damaged", TFS_SEV_ERROR, path,
		                      je.offset, "journal of an interrupted tokenfs transaction cannot be "
		                      "read (%s); recovery will refuse it and change nothing: see "
		                      "docs/writes.md", je.what);
	} else {
		*overlay = true;
		rc = tfs_findings_add(&store->findings, "token.txn-pending", TFS_SEV_WARNING, path,
		                      TFS_NO_OFFSET, "a tokenfs transaction over %zu files committed but "
		                      "did not finish (%zu still staged); shown as it will be after "
		                      "'tokenfs recover', which any write command also runs", count, staged);
	}
	free(path);
	return rc == TFS_OK ? TFS_OK : tfs_nomem(err);
}

char *tfs_pending_path(const char *tokpath, const char *name, const tfs_dirent *ents, size_t n,
                       bool overlay)
{
	char staged[512], *p = NULL;
	if (overlay && snprintf(staged, sizeof(staged), "%s%s", name, TFS_TXN_STAGED_SUFFIX) <
	                   (int)sizeof(staged) && tfs_dirents_have(ents, n, staged, TFS_ENT_FILE))
		name = staged;
	if (asprintf(&p, "%s/%s", tokpath, name) < 0)
		return NULL;
	return p;
}
