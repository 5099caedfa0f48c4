/* Shared helpers for the libFuzzer targets: a private temp folder and whole-file writes. */
#ifndef DEMARCHE_FUZZ_UTIL_H
#define DEMARCHE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xalloc.h"

/* One temp folder per fuzzing process, removed at exit; created on first use. */
static char fuzz_dir_path[64];

static void fuzz_dir_remove(void)
{
	char cmd[96];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: cannot remove %s\n", fuzz_dir_path);
}

static const char *fuzz_dir(void)
{
	if (!fuzz_dir_path[0]) {
		snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/tmp/demarche-fuzz-XXXXXX");
		if (!mkdtemp(fuzz_dir_path))
			abort();
		atexit(fuzz_dir_remove);
	}
	return fuzz_dir_path;
}

/* Writes data to NAME in the temp folder and returns its path (the caller frees it). */
static char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
	char *path = xasprintf("%s/%s", fuzz_dir(), name);
	FILE *fp = fopen(path, "wb");

	if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0)
		abort(); /* the fuzzing machine itself is broken */
	return path;
}

#endif
