/* Reader of the crypto known-answer vector files: see testvec.h. */
#include "crypto/testvec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

const char *tv_path(const char *rel)
{
	static char path[4096];
	const char *root = getenv("TFS_TESTDATA");
	if (root == NULL)
		fail_msg("TFS_TESTDATA is not set: run the test through ctest");
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return path;
}

static void parse_line(tv_record *r, char *line, const char *file, size_t lineno)
{
	r->line = line;
	r->nfields = 0;
	char *save = NULL;
	r->kind = strtok_r(line, " ", &save);
	for (char *tok = strtok_r(NULL, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL || r->nfields == TV_MAX_FIELDS)
			fail_msg("%s:%zu: bad field '%s'", file, lineno, tok);
		*eq = '\0';
		r->key[r->nfields] = tok;
		r->val[r->nfields] = eq + 1;
		r->nfields++;
	}
}

size_t tv_load(const char *file, tv_record **out)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "crypto/%s", file);
	FILE *f = fopen(tv_path(rel), "r");
	if (f == NULL)
		fail_msg("cannot open %s: run scripts/make-crypto-vectors.py", tv_path(rel));
	tv_record *recs = NULL;
	size_t n = 0, lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	while ((got = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
			line[--got] = '\0';
		if (got == 0 || line[0] == '#')
			continue;
		tv_record *nr = realloc(recs, (n + 1) * sizeof(*nr));
		assert_non_null(nr);
		recs = nr;
		char *copy = strdup(line);
		assert_non_null(copy);
		parse_line(&recs[n++], copy, file, lineno);
	}
	free(line);
	fclose(f);
	if (n == 0)
		fail_msg("%s holds no vectors", file);
	*out = recs;
	return n;
}

void tv_free(tv_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(recs[i].line);
	free(recs);
}

const char *tv_get(const tv_record *r, const char *key)
{
	for (size_t i = 0; i < r->nfields; i++)
		if (strcmp(r->key[i], key) == 0)
			return r->val[i];
	return NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint8_t *tv_hex(const tv_record *r, const char *key, size_t *len)
{
	const char *s = tv_get(r, key);
	if (s == NULL)
		fail_msg("vector %s lacks field %s", tv_get(r, "name"), key);
	size_t n = strlen(s);
	if (n % 2 != 0)
		fail_msg("vector %s: field %s has odd length", tv_get(r, "name"), key);
	uint8_t *b = malloc(n / 2 + 1);
	assert_non_null(b);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			fail_msg("vector %s: field %s is not hex", tv_get(r, "name"), key);
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return b;
}
