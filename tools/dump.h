/*
 * The dump command walks stores and hands what it reads to one renderer
 * (text, JSON). Renderers only format: they never read files or decide what
 * is wrong.
 */
#ifndef TFS_TOOLS_DUMP_H
#define TFS_TOOLS_DUMP_H

#include <stdio.h>

#include "tokenfs/tokenfs.h"

typedef struct dump_sink dump_sink;

struct dump_sink {
	FILE *out;
	bool first_token;  /* renderer state for separators */
	bool first_object;
	void (*token_begin)(dump_sink *s, const tfs_token *tok);
	/* obj is NULL when the file could not be parsed; err then says why. */
	void (*object)(dump_sink *s, const tfs_token *tok, size_t i, const tfs_object *obj,
	               const tfs_error *err);
	void (*token_end)(dump_sink *s, const tfs_token *tok);
	void (*finish)(dump_sink *s);
};

void dump_text_init(dump_sink *s, FILE *out);
void dump_json_init(dump_sink *s, FILE *out);

/* The value of a ulong attribute with its symbolic name where it has one:
 * "CKO_SECRET_KEY" or NULL. */
const char *dump_ulong_name(uint64_t attr_type, uint64_t value);

#endif
