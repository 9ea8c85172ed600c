/* tokenfs pin-audit: what the command found, and how it is shown. The search
 * itself is libtokenfs/audit's; cmd_pin_audit.c runs it, pin_audit_render.c
 * renders the results. */
#ifndef TFS_TOOLS_PIN_AUDIT_H
#define TFS_TOOLS_PIN_AUDIT_H

#include <stdbool.h>

#include "cli.h"

/* One PIN blob of a token and what the search made of it. */
typedef struct pa_blob {
	tfs_pin_role role;
	bool present;    /* the token has this blob */
	bool searched;   /* a search ran (or was started) */
	bool damaged;    /* not 72 bytes: not searched */
	tfs_audit_result r;
} pa_blob;

typedef struct pa_render {
	const tfs_audit_spaces *spaces;
	bool reveal;
	struct json_object *tokens; /* JSON: one member per token; NULL for text */
} pa_render;

/* "user" or "so"; "user PIN" or "SO PIN". */
const char *pa_role_name(tfs_pin_role role);
const char *pa_role_title(tfs_pin_role role);

/* A token's report, as text on stdout or added to r->tokens. */
void pa_render_token(pa_render *r, const tfs_token *tok, const pa_blob *blobs, size_t n);

/* "14 min", "2.3 h", "1.2e+12 years": a duration for people. */
const char *pa_duration(double seconds, char *buf, size_t size);

#endif
