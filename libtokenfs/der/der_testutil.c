/* Helpers for the decoder tests; see der_testutil.h. */
#include "der/der_testutil.h"
#include "testutil/testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

char *dt_path(const char *rel)
{
	const char *base = getenv("TFS_TESTDATA");
	if (base == NULL)
		fail_msg("TFS_TESTDATA is not set");
	char *p = NULL;
	assert_true(asprintf(&p, "%s/%s", base, rel) > 0);
	return p;
}

uint8_t *dt_read(const char *path, size_t *len)
{
	return tu_read_file(path, len);
}

char *dt_write_temp(const uint8_t *p, size_t n)
{
	const char *dir = getenv("TMPDIR");
	char *path = NULL;
	assert_true(asprintf(&path, "%s/tfs-der-XXXXXX", dir && *dir ? dir : "/tmp") > 0);
	int fd = mkstemp(path);
	if (fd < 0)
		fail_msg("mkstemp %s failed", path);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
	return path;
}

void dt_remove_temp(char *path)
{
	unlink(path);
	free(path);
}

char *dt_run(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = NULL, *full = NULL;
	assert_true(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	assert_true(asprintf(&full, "%s 2>/dev/null", cmd) > 0);
	FILE *p = popen(full, "r");
	assert_non_null(p);
	char *out = NULL;
	size_t size = 0, cap = 0, got;
	do {
		if (size + 1 >= cap) {
			cap = cap ? 2 * cap : 4096;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		got = fread(out + size, 1, cap - size - 1, p);
		size += got;
	} while (got > 0);
	out[size] = '\0';
	int st = pclose(p);
	free(cmd);
	free(full);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

char *dt_after(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (strncmp(s, prefix, n) == 0 && (size_t)(s - line) + n <= len)
			return strndup(s + n, len - (size_t)(s - line) - n);
		line = end ? end + 1 : NULL;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **dt_list(const char *dir, const char *prefix, const char *suffix, size_t *n)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		fail_msg("cannot open %s", dir);
	char **names = NULL;
	size_t count = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name), sl = strlen(suffix);
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || l < sl ||
		    strcmp(e->d_name + l - sl, suffix) != 0)
			continue;
		names = realloc(names, (count + 1) * sizeof(*names));
		assert_non_null(names);
		names[count++] = strdup(e->d_name);
	}
	closedir(d);
	if (count > 0)
		qsort(names, count, sizeof(*names), cmp);
	*n = count;
	return names;
}

void dt_free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

bool dt_utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (*s) {
		size_t k;
		unsigned v;
		if (*s < 0x80) {
			s++;
			continue;
		} else if (*s >= 0xc2 && *s <= 0xdf) {
			k = 1, v = *s & 0x1f;
		} else if (*s >= 0xe0 && *s <= 0xef) {
			k = 2, v = *s & 0x0f;
		} else if (*s >= 0xf0 && *s <= 0xf4) {
			k = 3, v = *s & 0x07;
		} else {
			return false;
		}
		for (size_t i = 1; i <= k; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			v = v << 6 | (s[i] & 0x3f);
		}
		if ((k == 2 && v < 0x800) || (k == 3 && (v < 0x10000 || v > 0x10ffff)) ||
		    (v >= 0xd800 && v <= 0xdfff))
			return false;
		s += k + 1;
	}
	return true;
}

void dt_openssl_date_iso(const char *in, char out[32])
{
	static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char mon[4];
	int d, h, mi, s, y, m = -1;
	if (sscanf(in, "%3s %d %d:%d:%d %d GMT", mon, &d, &h, &mi, &s, &y) != 6)
		fail_msg("openssl date \"%s\" not understood", in);
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, months[i]) == 0)
			m = i + 1;
	assert_true(m > 0);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, h, mi, s);
}

char *dt_hex(const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", p[i]);
	s[2 * n] = '\0';
	return s;
}

char *dt_hex_digits(const char *in)
{
	char *s = malloc(strlen(in) + 1);
	assert_non_null(s);
	size_t k = 0;
	for (; *in; in++)
		if (isxdigit((unsigned char)*in))
			s[k++] = (char)tolower((unsigned char)*in);
	s[k] = '\0';
	return s;
}

void dt_expect(const tfs_decoded *d, const char *name, const char *want, const char *what)
{
	const char *got = tfs_decoded_get(d, name);
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(want, got) != 0)
		fail_msg("%s: field %s: decoded \"%s\", openssl \"%s\"", what, name,
		         got ? got : "(absent)", want ? want : "(absent)");
}
