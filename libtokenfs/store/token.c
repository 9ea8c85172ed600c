/* Token getters and on-demand object loading: see tokenfs/store.h. */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"
#include "format/object_internal.h"
#include "tokenfs/names.h"

/* Copies a blank-padded fixed-width SoftHSM text attribute, stopping at NUL
 * and dropping the padding. */
static void copy_text(char *dst, size_t cap, const tfs_object *meta, uint64_t type)
{
	dst[0] = '\0';
	const tfs_attr *a = tfs_object_find(meta, type);
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_BYTES)
		return;
	size_t len;
	const uint8_t *p = tfs_attr_bytes(a, &len);
	if (len > cap - 1)
		len = cap - 1;
	size_t n = 0;
	while (n < len && p[n] != '\0')
		n++;
	while (n > 0 && p[n - 1] == ' ')
		n--;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

void tfs_token_take_metadata(tfs_token *tok, tfs_object *meta)
{
	tok->meta = meta;
	copy_text(tok->label, sizeof(tok->label), meta, TFS_CKA_OS_TOKENLABEL);
	copy_text(tok->serial, sizeof(tok->serial), meta, TFS_CKA_OS_TOKENSERIAL);
}

const char *tfs_token_path(const tfs_token *tok) { return tok->path; }
const char *tfs_token_dirname(const tfs_token *tok) { return tok->dirname; }
const tfs_object *tfs_token_metadata(const tfs_token *tok) { return tok->meta; }
const char *tfs_token_label(const tfs_token *tok) { return tok->label; }
const char *tfs_token_serial(const tfs_token *tok) { return tok->serial; }
size_t tfs_token_object_count(const tfs_token *tok) { return tok->nobjs; }

bool tfs_token_slot_id(const tfs_token *tok, uint32_t *slot_id)
{
	/* SoftHSM 2.2+: strtoul(last 8 characters of the serial, 16) & 0x7FFFFFFF,
	 * so leading hex digits count and anything after them is ignored. */
	size_t n = strlen(tok->serial);
	if (n == 0)
		return false;
	const char *tail = n < 8 ? tok->serial : tok->serial + n - 8;
	*slot_id = (uint32_t)(strtoul(tail, NULL, 16) & 0x7FFFFFFFul);
	return true;
}

bool tfs_token_flags(const tfs_token *tok, uint64_t *flags)
{
	const tfs_attr *a = tok->meta ? tfs_object_find(tok->meta, TFS_CKA_OS_TOKENFLAGS) : NULL;
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_ULONG)
		return false;
	*flags = tfs_attr_ulong(a);
	return true;
}

const uint8_t *tfs_token_pin_blob(const tfs_token *tok, tfs_pin_role role, size_t *len)
{
	*len = 0;
	uint64_t type = role == TFS_PIN_SO ? TFS_CKA_OS_SOPIN : TFS_CKA_OS_USERPIN;
	const tfs_attr *a = tok->meta ? tfs_object_find(tok->meta, type) : NULL;
	if (a == NULL || tfs_attr_kind(a) != TFS_KIND_BYTES)
		return NULL;
	const uint8_t *p = tfs_attr_bytes(a, len);
	return *len > 0 ? p : NULL;
}

bool tfs_token_generation(const tfs_token *tok, uint64_t *generation)
{
	if (!tok->has_generation)
		return false;
	*generation = tok->generation;
	return true;
}

const char *tfs_token_object_file(const tfs_token *tok, size_t i)
{
	return i < tok->nobjs ? tok->objs[i].file : NULL;
}

const char *tfs_token_object_uuid(const tfs_token *tok, size_t i)
{
	return i < tok->nobjs ? tok->objs[i].uuid : NULL;
}

const char *tfs_token_object_path(const tfs_token *tok, size_t i)
{
	return i < tok->nobjs ? tok->objs[i].path : NULL;
}

bool tfs_token_object_has_lock(const tfs_token *tok, size_t i)
{
	return i < tok->nobjs && tok->objs[i].has_lock;
}

int tfs_token_read_object(uint8_t **data, size_t *size, const tfs_token *tok, size_t i,
                          tfs_error *err)
{
	*data = NULL;
	*size = 0;
	tfs_error_clear(err);
	if (i >= tok->nobjs)
		return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET, "no object %zu in token", i);
	return tfs_store_read_settled(tok->store, tok->objs[i].path, TFS_FILE_OBJECT, data, size,
	                              NULL, err);
}

int tfs_token_load_object(tfs_object **out, const tfs_token *tok, size_t i, tfs_error *err)
{
	*out = NULL;
	uint8_t *data;
	size_t size;
	tfs_error_clear(err);
	if (i >= tok->nobjs)
		return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET, "no object %zu in token", i);
	int rc = tfs_store_read_settled(tok->store, tok->objs[i].path, TFS_FILE_OBJECT, &data, &size,
	                                out, err);
	if (rc != TFS_OK)
		return rc;
	if (*out != NULL) {
		tfs_file_bytes_free(data, size);
		return TFS_OK;
	}
	rc = tfs_object_parse_owned(out, data, size, err); /* again, for its error */
	if (rc != TFS_OK)
		tfs_error_where(err, "%s", tok->objs[i].path);
	return rc;
}

int tfs_token_read_metadata(uint8_t **data, size_t *size, const tfs_token *tok, tfs_error *err)
{
	*data = NULL;
	*size = 0;
	tfs_error_clear(err);
	const tfs_store *s = tok->store;
	if (s->kind == TFS_PATH_OBJECT_FILE)
		return tfs_error_set(err, TFS_E_NOTFOUND, TFS_NO_OFFSET,
		                     "a single object file has no token.object");
	char *path = NULL;
	if (asprintf(&path, "%s/token.object", tok->path) < 0)
		return tfs_nomem(err);
	int rc = tfs_store_read_settled(s, path, TFS_FILE_TOKEN, data, size, NULL, err);
	free(path);
	return rc;
}
