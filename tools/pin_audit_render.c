/* pin-audit's report: per blob what was found, covered and measured, what a
 * full search of the rest would take here, and a verdict per token. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "pin_audit.h"

/* Digit lengths every report estimates, found or not (the range). */
#define EST_DIGITS_MIN 4
#define EST_DIGITS_MAX 10

static const char *const limit_names[3] = {"hour", "day", "year"};

const char *pa_role_name(tfs_pin_role role)
{
	return role == TFS_PIN_USER ? "user" : "so";
}

const char *pa_role_title(tfs_pin_role role)
{
	return role == TFS_PIN_USER ? "user PIN" : "SO PIN";
}

const char *pa_duration(double s, char *buf, size_t size)
{
	if (isinf(s) || isnan(s))
		snprintf(buf, size, "unknown (no rate)");
	else if (s < 1)
		snprintf(buf, size, "%.2f s", s);
	else if (s < 120)
		snprintf(buf, size, "%.1f s", s);
	else if (s < 7200)
		snprintf(buf, size, "%.0f min", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, size, "%.1f h", s / 3600);
	else if (s < 365.25 * 86400)
		snprintf(buf, size, "%.0f days", s / 86400);
	else if (s < 1e6 * 365.25 * 86400)
		snprintf(buf, size, "%.0f years", s / (365.25 * 86400));
	else
		snprintf(buf, size, "%.1e years", s / (365.25 * 86400));
	return buf;
}

/* "all-digit PINs of length 4", "the common-PIN list", "mask ?u?l", "the wordlist". */
static const char *space_text(const tfs_audit_spaces *s, size_t i, char *buf, size_t size)
{
	switch (tfs_audit_space_kind(s, i)) {
	case TFS_AUDIT_COMMON: snprintf(buf, size, "the common-PIN list"); break;
	case TFS_AUDIT_DIGITS:
		snprintf(buf, size, "all-digit PINs of length %u", tfs_audit_space_length(s, i));
		break;
	case TFS_AUDIT_WORDLIST: snprintf(buf, size, "the wordlist"); break;
	case TFS_AUDIT_MASK: snprintf(buf, size, "mask %s", tfs_audit_space_mask(s, i)); break;
	}
	return buf;
}

static bool digits_exhausted(const tfs_audit_spaces *s, const tfs_audit_result *r, unsigned len)
{
	for (size_t i = 0; i < r->nspaces; i++)
		if (tfs_audit_space_kind(s, i) == TFS_AUDIT_DIGITS && tfs_audit_space_length(s, i) == len)
			return (double)r->tried_in[i] >= tfs_audit_space_size(s, i);
	return false;
}

static const char *stop_reason(const tfs_audit_result *r)
{
	if (r->found)
		return "found";
	if (r->cancelled)
		return "interrupted";
	if (r->timed_out)
		return "max-time";
	return "exhausted";
}

/* The estimates of a blob: digits 4..10 and every space of the run not
 * tried to its end. cb gets (what, size, seconds). */
typedef void (*est_fn)(void *ctx, const char *kind, unsigned length, const char *mask,
                       double size, double seconds);
static void each_estimate(const tfs_audit_spaces *s, const tfs_audit_result *r, est_fn fn,
                          void *ctx)
{
	double size = 1e4;
	for (unsigned len = EST_DIGITS_MIN; len <= EST_DIGITS_MAX; len++, size *= 10)
		if (!digits_exhausted(s, r, len))
			fn(ctx, "digits", len, NULL, size, tfs_audit_seconds(size, r->rate));
	for (size_t i = 0; i < r->nspaces; i++) {
		tfs_audit_kind k = tfs_audit_space_kind(s, i);
		double sz = tfs_audit_space_size(s, i);
		if (k == TFS_AUDIT_DIGITS || (double)r->tried_in[i] >= sz)
			continue;
		fn(ctx, tfs_audit_kind_name(k), tfs_audit_space_length(s, i),
		   tfs_audit_space_mask(s, i), sz, tfs_audit_seconds(sz, r->rate));
	}
}

static void est_text(void *ctx, const char *kind, unsigned length, const char *mask, double size,
                     double seconds)
{
	(void)ctx;
	char what[300], d[64];
	if (strcmp(kind, "digits") == 0)
		snprintf(what, sizeof(what), "all-digit PINs of length %u", length);
	else if (mask != NULL)
		snprintf(what, sizeof(what), "mask %s", mask);
	else
		snprintf(what, sizeof(what), "the %s", strcmp(kind, "common") == 0 ? "common-PIN list" : kind);
	printf("      %-34s %12.4g candidates  %s\n", what, size, pa_duration(seconds, d, sizeof(d)));
}

static void est_json(void *ctx, const char *kind, unsigned length, const char *mask, double size,
                     double seconds)
{
	json_object *e = json_object_new_object();
	json_object_object_add(e, "space", json_object_new_string(kind));
	json_object_object_add(e, "length", length > 0 ? json_object_new_int((int)length) : NULL);
	json_object_object_add(e, "mask", mask != NULL ? json_object_new_string(mask) : NULL);
	json_object_object_add(e, "candidates", json_object_new_double(size));
	json_object_object_add(e, "seconds", isfinite(seconds) ? json_object_new_double(seconds) : NULL);
	json_object_array_add(ctx, e);
}

/* The token's rate for the verdict: the slowest blob searched, so that "a
 * PIN of up to N digits falls in under an hour" holds for both PINs. */
static double token_rate(const pa_blob *b, size_t n)
{
	double rate = 0;
	for (size_t i = 0; i < n; i++)
		if (b[i].searched && b[i].r.rate > 0 && (rate == 0 || b[i].r.rate < rate))
			rate = b[i].r.rate;
	return rate;
}

static void text_blob(const pa_render *pr, const pa_blob *b)
{
	const tfs_audit_spaces *s = pr->spaces;
	const tfs_audit_result *r = &b->r;
	char sp[300], d[64];
	if (!b->present) {
		printf("  %s: none set (the token has no blob for it)\n", pa_role_title(b->role));
		return;
	}
	if (b->damaged) {
		printf("  %s: blob damaged (not 72 bytes); not searched\n", pa_role_title(b->role));
		return;
	}
	if (!b->searched) {
		printf("  %s: not searched (interrupted before)\n", pa_role_title(b->role));
		return;
	}
	printf("  %s (%u KDF rounds): ", pa_role_title(b->role), r->rounds);
	if (r->found) {
		printf("FOUND in %s after %llu candidates in %s (%s blob)\n",
		       space_text(s, r->space, sp, sizeof(sp)), (unsigned long long)r->tried,
		       pa_duration(r->seconds, d, sizeof(d)), tfs_layout_name(r->layout));
		if (pr->reveal) {
			char pb[4 * TFS_AUDIT_PIN_MAX + 8], raw[TFS_AUDIT_PIN_MAX + 1];
			memcpy(raw, r->pin, r->pin_len);
			raw[r->pin_len] = '\0';
			printf("    PIN: %s\n", cli_safe(raw, pb, sizeof(pb)));
			OPENSSL_cleanse(raw, sizeof(raw));
			OPENSSL_cleanse(pb, sizeof(pb));
		} else {
			printf("    (not shown; --reveal prints it)\n");
		}
	} else {
		printf("not found: %llu candidates in %s (%s)\n", (unsigned long long)r->tried,
		       pa_duration(r->seconds, d, sizeof(d)),
		       r->cancelled ? "interrupted" : r->timed_out ? "stopped by --max-time"
		                                                   : "every candidate tried");
	}
	printf("    covered:");
	for (size_t i = 0; i < r->nspaces; i++)
		printf("%s %s %llu/%.0f", i ? "," : "", space_text(s, i, sp, sizeof(sp)),
		       (unsigned long long)r->tried_in[i], tfs_audit_space_size(s, i));
	printf("\n    rate: %.0f guesses/s on %u thread%s (measured over %llu guesses in %.2f s)\n",
	       r->rate, r->threads, r->threads == 1 ? "" : "s", (unsigned long long)r->rate_candidates,
	       r->rate_seconds);
	printf("    a full search here, at this rate:\n");
	each_estimate(s, r, est_text, NULL);
}

static void text_verdict(const pa_render *pr, const pa_blob *b, size_t n)
{
	char d[64], sp[300];
	printf("  verdict:");
	for (size_t i = 0; i < n; i++) {
		if (!b[i].searched)
			continue;
		if (b[i].r.found)
			printf(" the %s fell in %s (%s)%s;", pa_role_title(b[i].role),
			       pa_duration(b[i].r.seconds, d, sizeof(d)),
			       space_text(pr->spaces, b[i].r.space, sp, sizeof(sp)),
			       b[i].r.seconds < 3600 ? ", under an hour" : b[i].r.seconds < 86400 ? ", under a day" : "");
		else
			printf(" the %s was not found;", pa_role_title(b[i].role));
	}
	double rate = token_rate(b, n);
	if (rate <= 0) {
		printf(" no rate measured\n");
		return;
	}
	printf("\n    here, an all-digit PIN falls");
	for (int l = 0; l < 3; l++) {
		unsigned dm = tfs_audit_digits_within(rate, tfs_audit_limit_seconds[l]);
		const char *a = l == 0 ? "an" : "a";
		if (dm == 0)
			printf("%s in no length in under %s %s", l ? "," : "", a, limit_names[l]);
		else
			printf("%s %s%u digits in under %s %s", l ? "," : "", l ? "" : "with up to ", dm, a,
			       limit_names[l]);
	}
	printf("\n");
	const tfs_audit_spaces *s = pr->spaces;
	for (size_t i = 0; i < tfs_audit_space_count(s); i++) {
		if (tfs_audit_space_kind(s, i) == TFS_AUDIT_DIGITS)
			continue;
		double t = tfs_audit_seconds(tfs_audit_space_size(s, i), rate);
		printf("    any PIN in %s falls in at most %s%s\n", space_text(s, i, sp, sizeof(sp)),
		       pa_duration(t, d, sizeof(d)),
		       t <= tfs_audit_limit_seconds[0] ? " (under an hour)" :
		       t <= tfs_audit_limit_seconds[1] ? " (under a day)" :
		       t <= tfs_audit_limit_seconds[2] ? " (under a year)" : "");
	}
}

static json_object *json_blob(const pa_render *pr, const pa_blob *b)
{
	const tfs_audit_spaces *s = pr->spaces;
	const tfs_audit_result *r = &b->r;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "role", json_object_new_string(pa_role_name(b->role)));
	json_object_object_add(j, "present", json_object_new_boolean(b->present));
	json_object_object_add(j, "damaged", json_object_new_boolean(b->damaged));
	json_object_object_add(j, "searched", json_object_new_boolean(b->searched));
	if (!b->searched)
		return j;
	json_object_object_add(j, "rounds", json_object_new_int((int)r->rounds));
	json_object_object_add(j, "found", json_object_new_boolean(r->found));
	json_object_object_add(j, "stopped", json_object_new_string(stop_reason(r)));
	json_object_object_add(j, "space", r->found ? json_object_new_int((int)r->space) : NULL);
	json_object_object_add(j, "layout", r->found ? json_object_new_string(tfs_layout_name(r->layout)) : NULL);
	if (r->found && pr->reveal) {
		char raw[TFS_AUDIT_PIN_MAX + 1];
		memcpy(raw, r->pin, r->pin_len);
		raw[r->pin_len] = '\0';
		json_object_object_add(j, "pin", cli_json_string(raw));
		OPENSSL_cleanse(raw, sizeof(raw));
	}
	json_object_object_add(j, "tried", json_object_new_uint64(r->tried));
	json_object *per = json_object_new_array();
	for (size_t i = 0; i < r->nspaces; i++)
		json_object_array_add(per, json_object_new_uint64(r->tried_in[i]));
	json_object_object_add(j, "tried_per_space", per);
	json_object_object_add(j, "seconds", json_object_new_double(r->seconds));
	json_object_object_add(j, "threads", json_object_new_int((int)r->threads));
	json_object_object_add(j, "guesses_per_second", json_object_new_double(r->rate));
	json_object_object_add(j, "rate_guesses", json_object_new_uint64(r->rate_candidates));
	json_object_object_add(j, "rate_seconds", json_object_new_double(r->rate_seconds));
	json_object *est = json_object_new_array();
	each_estimate(s, r, est_json, est);
	json_object_object_add(j, "estimates", est);
	return j;
}

static json_object *json_verdict(const pa_render *pr, const pa_blob *b, size_t n)
{
	double rate = token_rate(b, n);
	json_object *v = json_object_new_object();
	json_object_object_add(v, "guesses_per_second", json_object_new_double(rate));
	for (int l = 0; l < 3; l++) {
		json_object *x = json_object_new_object(), *masks = json_object_new_array();
		unsigned dm = rate > 0 ? tfs_audit_digits_within(rate, tfs_audit_limit_seconds[l]) : 0;
		json_object_object_add(x, "digits_max", json_object_new_int((int)dm));
		for (size_t i = 0; i < tfs_audit_space_count(pr->spaces); i++)
			if (tfs_audit_space_kind(pr->spaces, i) == TFS_AUDIT_MASK && rate > 0 &&
			    tfs_audit_seconds(tfs_audit_space_size(pr->spaces, i), rate) <= tfs_audit_limit_seconds[l])
				json_object_array_add(masks, json_object_new_string(tfs_audit_space_mask(pr->spaces, i)));
		json_object_object_add(x, "masks", masks);
		json_object *within = json_object_new_array();
		for (size_t i = 0; i < tfs_audit_space_count(pr->spaces); i++)
			if (rate > 0 &&
			    tfs_audit_seconds(tfs_audit_space_size(pr->spaces, i), rate) <= tfs_audit_limit_seconds[l])
				json_object_array_add(within, json_object_new_int((int)i));
		json_object_object_add(x, "spaces", within);
		json_object *found = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			if (b[i].searched && b[i].r.found && b[i].r.seconds <= tfs_audit_limit_seconds[l])
				json_object_array_add(found, json_object_new_string(pa_role_name(b[i].role)));
		json_object_object_add(x, "found", found);
		json_object_object_add(v, limit_names[l], x);
	}
	return v;
}

void pa_render_token(pa_render *pr, const tfs_token *tok, const pa_blob *b, size_t n)
{
	if (pr->tokens != NULL) {
		json_object *t = json_object_new_object(), *blobs = json_object_new_array();
		json_object_object_add(t, "dir", cli_json_string(tfs_token_path(tok)));
		json_object_object_add(t, "label", cli_json_string(tfs_token_label(tok)));
		json_object_object_add(t, "serial", cli_json_string(tfs_token_serial(tok)));
		for (size_t i = 0; i < n; i++)
			json_object_array_add(blobs, json_blob(pr, &b[i]));
		json_object_object_add(t, "blobs", blobs);
		json_object_object_add(t, "verdict", json_verdict(pr, b, n));
		json_object_array_add(pr->tokens, t);
		return;
	}
	char lb[200], sb[100], pb[4 * 4096 + 8];
	printf("token \"%s\" (serial %s, %s)\n", cli_safe(tfs_token_label(tok), lb, sizeof(lb)),
	       cli_safe(tfs_token_serial(tok), sb, sizeof(sb)),
	       cli_safe(tfs_token_path(tok), pb, sizeof(pb)));
	for (size_t i = 0; i < n; i++)
		text_blob(pr, &b[i]);
	text_verdict(pr, b, n);
	fflush(stdout);
}
