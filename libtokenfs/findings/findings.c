/* Findings: see tokenfs/finding.h. */
#include "findings/findings_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int push(tfs_findings *list, const char *code, tfs_severity sev,
                const tfs_location *loc, char *message)
{
	if (message == NULL)
		return TFS_E_NOMEM;
	if (list->count == list->cap) {
		size_t ncap = list->cap ? list->cap * 2 : 16;
		tfs_finding *p = realloc(list->items, ncap * sizeof(*p));
		if (p == NULL) {
			free(message);
			return TFS_E_NOMEM;
		}
		list->items = p;
		list->cap = ncap;
	}
	char *pcopy = strdup(loc->path != NULL ? loc->path : "");
	char *ocopy = loc->object != NULL ? strdup(loc->object) : NULL;
	if (pcopy == NULL || (loc->object != NULL && ocopy == NULL)) {
		free(pcopy);
		free(ocopy);
		free(message);
		return TFS_E_NOMEM;
	}
	list->items[list->count++] = (tfs_finding){
		.code = code, .severity = sev, .path = pcopy, .offset = loc->offset,
		.message = message, .object = ocopy, .has_attr = loc->has_attr, .attr = loc->attr};
	return TFS_OK;
}

int tfs_findings_add(tfs_findings *list, const char *code, tfs_severity sev,
                     const char *path, uint64_t offset, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	tfs_location loc = {.path = path, .offset = offset};
	return push(list, code, sev, &loc, msg);
}

int tfs_findings_addl(tfs_findings *list, const char *code, tfs_severity sev,
                      const tfs_location *loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return push(list, code, sev, loc, msg);
}

int tfs_findings_add_error(tfs_findings *list, const char *code, tfs_severity sev,
                           const tfs_error *err)
{
	tfs_location loc = {.path = err->where, .offset = err->offset};
	return push(list, code, sev, &loc, strdup(err->what[0] ? err->what : tfs_status_name(err->code)));
}

int tfs_findings_move(tfs_findings *dst, tfs_findings *src)
{
	if (src->count == 0)
		return TFS_OK;
	if (dst->count == 0) {
		tfs_findings_free(dst);
		*dst = *src;
		memset(src, 0, sizeof(*src));
		return TFS_OK;
	}
	if (dst->cap - dst->count < src->count) {
		size_t ncap = dst->count + src->count;
		tfs_finding *p = realloc(dst->items, ncap * sizeof(*p));
		if (p == NULL)
			return TFS_E_NOMEM;
		dst->items = p;
		dst->cap = ncap;
	}
	memcpy(dst->items + dst->count, src->items, src->count * sizeof(*src->items));
	dst->count += src->count;
	free(src->items);
	memset(src, 0, sizeof(*src));
	return TFS_OK;
}

void tfs_findings_free(tfs_findings *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i].path);
		free(list->items[i].message);
		free(list->items[i].object);
		free(list->items[i].old_value);
		free(list->items[i].new_value);
	}
	free(list->items);
	memset(list, 0, sizeof(*list));
}

const char *tfs_finding_code(const tfs_finding *f) { return f->code; }
tfs_severity tfs_finding_severity(const tfs_finding *f) { return f->severity; }
const char *tfs_finding_path(const tfs_finding *f) { return f->path; }
uint64_t tfs_finding_offset(const tfs_finding *f) { return f->offset; }
const char *tfs_finding_message(const tfs_finding *f) { return f->message; }
const char *tfs_finding_object(const tfs_finding *f) { return f->object; }
const char *tfs_finding_old_value(const tfs_finding *f) { return f->old_value; }
const char *tfs_finding_new_value(const tfs_finding *f) { return f->new_value; }

int tfs_findings_set_values(tfs_findings *list, const char *old_value, const char *new_value)
{
	tfs_finding *f = &list->items[list->count - 1];
	f->old_value = old_value != NULL ? strdup(old_value) : NULL;
	f->new_value = new_value != NULL ? strdup(new_value) : NULL;
	return (old_value != NULL && f->old_value == NULL) || (new_value != NULL && f->new_value == NULL)
	       ? TFS_E_NOMEM : TFS_OK;
}

bool tfs_finding_attribute(const tfs_finding *f, uint64_t *type)
{
	if (f->has_attr)
		*type = f->attr;
	return f->has_attr;
}

const char *tfs_severity_name(tfs_severity sev)
{
	switch (sev) {
	case TFS_SEV_INFO: return "info";
	case TFS_SEV_WARNING: return "warning";
	case TFS_SEV_ERROR: return "error";
	}
	return "unknown";
}
