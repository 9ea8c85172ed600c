/* The result of a decoder: named, typed fields in order, and a summary. */
#include "der/der_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_internal.h"

typedef struct field {
	const char *name; /* static */
	char *value;
	tfs_decoded_type type;
	int64_t num;      /* TFS_DECODED_INTEGER only */
} field;

struct tfs_decoded {
	const char *kind; /* static */
	field *fields;
	size_t count, cap;
	char *summary;
};

int tfs_decoded_new(tfs_decoded **out, const char *kind, tfs_error *err)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return tfs_nomem(err);
	(*out)->kind = kind;
	return TFS_OK;
}

void tfs_decoded_free(tfs_decoded *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->count; i++)
		free(d->fields[i].value);
	free(d->fields);
	free(d->summary);
	free(d);
}

static int add(tfs_decoded *d, const char *name, tfs_decoded_type type, char *value,
               int64_t num, tfs_error *err)
{
	if (value == NULL)
		return tfs_nomem(err);
	if (d->count == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 8;
		field *n = realloc(d->fields, ncap * sizeof(*n));
		if (n == NULL) {
			free(value);
			return tfs_nomem(err);
		}
		d->fields = n;
		d->cap = ncap;
	}
	d->fields[d->count++] = (field){.name = name, .value = value, .type = type, .num = num};
	return TFS_OK;
}

int tfs_decoded_add(tfs_decoded *d, const char *name, tfs_decoded_type type,
                    const char *value, tfs_error *err)
{
	int64_t num = 0;
	if (type == TFS_DECODED_INTEGER)
		num = strtoll(value, NULL, 10);
	return add(d, name, type, strdup(value), num, err);
}

int tfs_decoded_addf(tfs_decoded *d, const char *name, tfs_decoded_type type,
                     tfs_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return tfs_nomem(err);
	int64_t num = type == TFS_DECODED_INTEGER ? strtoll(s, NULL, 10) : 0;
	return add(d, name, type, s, num, err);
}

int tfs_decoded_add_int(tfs_decoded *d, const char *name, int64_t v, tfs_error *err)
{
	char *s = NULL;
	if (asprintf(&s, "%" PRId64, v) < 0)
		return tfs_nomem(err);
	return add(d, name, TFS_DECODED_INTEGER, s, v, err);
}

int tfs_decoded_add_bool(tfs_decoded *d, const char *name, bool v, tfs_error *err)
{
	return add(d, name, TFS_DECODED_BOOLEAN, strdup(v ? "true" : "false"), 0, err);
}

int tfs_decoded_add_decimal(tfs_decoded *d, const char *name, const char *dec, tfs_error *err)
{
	errno = 0;
	char *end;
	long long v = strtoll(dec, &end, 10);
	if (errno == 0 && *end == '\0' && end != dec)
		return add(d, name, TFS_DECODED_INTEGER, strdup(dec), v, err);
	return add(d, name, TFS_DECODED_STRING, strdup(dec), 0, err);
}

int tfs_decoded_set_summary(tfs_decoded *d, tfs_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return tfs_nomem(err);
	free(d->summary);
	d->summary = s;
	return TFS_OK;
}

const char *tfs_decoded_kind(const tfs_decoded *d)
{
	return d->kind;
}

const char *tfs_decoded_summary(const tfs_decoded *d)
{
	return d->summary != NULL ? d->summary : "";
}

size_t tfs_decoded_count(const tfs_decoded *d)
{
	return d->count;
}

const char *tfs_decoded_name(const tfs_decoded *d, size_t i)
{
	return i < d->count ? d->fields[i].name : NULL;
}

const char *tfs_decoded_value(const tfs_decoded *d, size_t i)
{
	return i < d->count ? d->fields[i].value : NULL;
}

tfs_decoded_type tfs_decoded_type_of(const tfs_decoded *d, size_t i)
{
	return i < d->count ? d->fields[i].type : (tfs_decoded_type)0;
}

const char *tfs_decoded_get(const tfs_decoded *d, const char *name)
{
	for (size_t i = 0; i < d->count; i++)
		if (strcmp(d->fields[i].name, name) == 0)
			return d->fields[i].value;
	return NULL;
}

bool tfs_decoded_int(const tfs_decoded *d, size_t i, int64_t *value)
{
	if (i >= d->count || d->fields[i].type != TFS_DECODED_INTEGER)
		return false;
	*value = d->fields[i].num;
	return true;
}
