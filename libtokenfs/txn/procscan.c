/*
 * Who has SoftHSM loaded. A running SoftHSM writes objects back from its
 * cache (docs/writes.md), so writers refuse while any process maps
 * libsofthsm2.so. /proc/<pid>/maps is the one place that tells, whatever
 * program loaded the module (pkcs11-tool, p11-kit, BIND, a JVM).
 */
#include "tokenfs/txn.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error_internal.h"

/* A maps line names the module when its path's last component starts with
 * libsofthsm2.so (libsofthsm2.so, .so.2, "... (deleted)" after an upgrade). */
static bool line_maps_softhsm(const char *line)
{
	const char *path = strchr(line, '/');
	if (path == NULL)
		return false;
	const char *base = strrchr(path, '/') + 1;
	return strncmp(base, "libsofthsm2.so", 14) == 0;
}

/* 1: maps SoftHSM, 0: does not, -1: could not be read. */
static int maps_softhsm(long pid)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT || errno == ESRCH ? 0 : -1; /* gone: not a user */
	int found = 0;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = line_maps_softhsm(line);
	fclose(f);
	return found;
}

static void read_comm(long pid, char *out, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	FILE *f = fopen(path, "re");
	out[0] = '\0';
	if (f == NULL)
		return;
	if (fgets(out, (int)size, f) != NULL)
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

int tfs_softhsm_users(tfs_process **out, size_t *count, size_t *unreadable, tfs_error *err)
{
	*out = NULL;
	*count = *unreadable = 0;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return tfs_error_set(err, TFS_E_IO, TFS_NO_OFFSET, "cannot list /proc to look for a "
		                     "running SoftHSM: %s", strerror(errno));
	tfs_process *list = NULL;
	size_t n = 0, cap = 0;
	long self = (long)getpid();
	int rc = TFS_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		long pid = strtol(e->d_name, NULL, 10);
		if (pid == self)
			continue;
		int m = maps_softhsm(pid);
		if (m < 0)
			(*unreadable)++;
		if (m <= 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			tfs_process *p = realloc(list, ncap * sizeof(*p));
			if (p == NULL) {
				rc = tfs_nomem(err);
				break;
			}
			list = p;
			cap = ncap;
		}
		list[n].pid = pid;
		read_comm(pid, list[n].comm, sizeof(list[n].comm));
		n++;
	}
	closedir(d);
	if (rc != TFS_OK) {
		free(list);
		return rc;
	}
	*out = list;
	*count = n;
	return TFS_OK;
}

void tfs_softhsm_users_free(tfs_process *list)
{
	free(list);
}
