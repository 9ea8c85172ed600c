/*
 * Which token each store finding concerns. Callers used to answer that by
 * comparing every finding's path with every token's path, which is
 * quadratic: 200,000 token directories took minutes. Here it is answered
 * once, when the store is opened, by a binary search over the token paths.
 *
 * The search key is the path with a '/' appended, so that "t1" owns
 * "t1/x.object" but not "t1-old/x.object". Token directories never nest, so
 * the owner of a finding is the greatest key not after the finding's own
 * key, provided that key is a prefix of it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"
#include "store/store_internal.h"

typedef struct owner_key {
	char *key; /* token path + "/" */
	size_t token;
} owner_key;

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(((const owner_key *)a)->key, ((const owner_key *)b)->key);
}

static char *slashed(const char *path)
{
	size_t n = strlen(path);
	char *k = malloc(n + 2);
	if (k != NULL) {
		memcpy(k, path, n);
		k[n] = '/';
		k[n + 1] = '\0';
	}
	return k;
}

/* The token owning path, or SIZE_MAX for none. */
static int find_owner(const owner_key *keys, size_t n, const char *path, size_t *owner,
                      tfs_error *err)
{
	*owner = SIZE_MAX;
	if (path == NULL)
		return TFS_OK;
	char *k = slashed(path);
	if (k == NULL)
		return tfs_nomem(err);
	size_t lo = 0, hi = n; /* the answer is lo - 1 */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(keys[mid].key, k) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && strncmp(keys[lo - 1].key, k, strlen(keys[lo - 1].key)) == 0)
		*owner = keys[lo - 1].token;
	free(k);
	return TFS_OK;
}

static void free_keys(owner_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i].key);
	free(keys);
}

/* Fills store->finding_owner and each token's list of its findings. */
static int fill_lists(tfs_store *store, tfs_error *err)
{
	for (size_t i = 0; i < store->findings.count; i++)
		if (store->finding_owner[i] != SIZE_MAX)
			store->tokens[store->finding_owner[i]].nfindings++;
	for (size_t t = 0; t < store->ntokens; t++) {
		tfs_token *tok = &store->tokens[t];
		if (tok->nfindings == 0)
			continue;
		tok->findings = malloc(tok->nfindings * sizeof(*tok->findings));
		if (tok->findings == NULL)
			return tfs_nomem(err);
		tok->nfindings = 0;
	}
	for (size_t i = 0; i < store->findings.count; i++) {
		size_t t = store->finding_owner[i];
		if (t != SIZE_MAX)
			store->tokens[t].findings[store->tokens[t].nfindings++] = i;
	}
	return TFS_OK;
}

int tfs_store_assign_findings(tfs_store *store, tfs_error *err)
{
	size_t nf = store->findings.count;
	if (nf == 0)
		return TFS_OK;
	store->finding_owner = malloc(nf * sizeof(*store->finding_owner));
	owner_key *keys = calloc(store->ntokens + 1, sizeof(*keys));
	if (store->finding_owner == NULL || keys == NULL) {
		free(keys);
		return tfs_nomem(err);
	}
	for (size_t t = 0; t < store->ntokens; t++) {
		keys[t].token = t;
		keys[t].key = slashed(store->tokens[t].path);
		if (keys[t].key == NULL) {
			free_keys(keys, t);
			return tfs_nomem(err);
		}
	}
	qsort(keys, store->ntokens, sizeof(*keys), cmp_keys);
	int rc = TFS_OK;
	for (size_t i = 0; i < nf && rc == TFS_OK; i++)
		rc = find_owner(keys, store->ntokens, store->findings.items[i].path,
		                &store->finding_owner[i], err);
	free_keys(keys, store->ntokens);
	return rc == TFS_OK ? fill_lists(store, err) : rc;
}

const tfs_token *tfs_store_finding_token(const tfs_store *s, size_t i)
{
	if (i >= s->findings.count || s->finding_owner == NULL || s->finding_owner[i] == SIZE_MAX)
		return NULL;
	return &s->tokens[s->finding_owner[i]];
}

size_t tfs_token_finding_count(const tfs_token *tok) { return tok->nfindings; }

const tfs_finding *tfs_token_finding(const tfs_token *tok, size_t i)
{
	return i < tok->nfindings ? &tok->store->findings.items[tok->findings[i]] : NULL;
}
