/* The store model shared by store.c (scanning) and token.c (getters and
 * object loading). */
#ifndef TFS_STORE_INTERNAL_H
#define TFS_STORE_INTERNAL_H

#include "findings/findings_internal.h"
#include "store/fs_internal.h"
#include "tokenfs/store.h"

typedef struct tfs_obj_entry {
	char *file; /* "<uuid>.object" */
	char *uuid; /* the stem */
	char *path;
	bool has_lock;
} tfs_obj_entry;

struct tfs_token {
	const tfs_store *store;
	char *path;
	const char *dirname; /* points into path */
	tfs_object *meta;    /* token.object, NULL when missing or damaged */
	char label[33];
	char serial[17];
	bool has_generation;
	uint64_t generation;
	tfs_obj_entry *objs;
	size_t nobjs;
};

struct tfs_store {
	tfs_fs *fs;
	tfs_fs *owned_fs; /* freed with the store (an archive image), or NULL */
	bool tree;        /* opened with tfs_store_open_tree */
	tfs_path_kind kind;
	char *path;
	unsigned lock_ms;
	tfs_token *tokens;
	size_t ntokens;
	tfs_findings findings;
};

/* Whether a listing (sorted by name) has an entry of this name and type. */
bool tfs_dirents_have(const tfs_dirent *ents, size_t n, const char *name, tfs_ent_type t);

/* pending.c: what an interrupted transaction left (see there). Adds the
 * findings; *overlay: a committed journal, so staged files stand in for
 * their targets. */
int tfs_pending_scan(tfs_store *store, const char *tokpath, const tfs_dirent *ents, size_t n,
                     bool *overlay, tfs_error *err);
/* Whether a name is the engine's (journal, its temporary file, staged). */
bool tfs_pending_is_txn_file(const char *name);
/* "<tokpath>/<name>", or its staged copy under an overlay; free(). */
char *tfs_pending_path(const char *tokpath, const char *name, const tfs_dirent *ents, size_t n,
                       bool overlay);

/* Reads token metadata (label, serial) out of a parsed token.object. */
void tfs_token_take_metadata(tfs_token *tok, tfs_object *meta);

#endif
