/*
 * Candidate spaces: an ordered list, each with a size and a way to make its
 * i-th candidate without state, so that any thread can start anywhere
 * (slice.c). Digits and masks are mixed-radix numbers, last position
 * fastest; the lists are arrays.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/audit_internal.h"
#include "core/error_internal.h"

#define MAX_SPACES 512

static const char DIGITS[] = "0123456789";
static const char LOWER[] = "abcdefghijklmnopqrstuvwxyz";
static const char UPPER[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/* hashcat's ?s: printable ASCII that is neither letter nor digit, space first. */
static const char SPECIAL[] = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
static const char ALL[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

typedef struct wordlist {
	uint8_t *data; /* the copied bytes, wiped on free */
	size_t size;
	size_t *off, *len;
	size_t n;
} wordlist;

typedef struct space {
	tfs_audit_kind kind;
	unsigned length;
	uint64_t size;   /* saturated */
	double size_f;
	/* mask: one charset per position (literals point into `lits`) */
	const char *set[TFS_AUDIT_PIN_MAX];
	uint8_t setlen[TFS_AUDIT_PIN_MAX];
	char *lits;
	char *mask; /* the text of this prefix */
	wordlist *words; /* borrowed from the spaces' list of wordlists */
} space;

struct tfs_audit_spaces {
	space *sp;
	size_t n;
	wordlist **wl;
	size_t nwl;
};

const char *tfs_audit_kind_name(tfs_audit_kind kind)
{
	switch (kind) {
	case TFS_AUDIT_COMMON: return "common";
	case TFS_AUDIT_DIGITS: return "digits";
	case TFS_AUDIT_WORDLIST: return "wordlist";
	case TFS_AUDIT_MASK: return "mask";
	}
	return "?";
}

int tfs_audit_spaces_new(tfs_audit_spaces **out, tfs_error *err)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? tfs_nomem(err) : TFS_OK;
}

void tfs_audit_spaces_free(tfs_audit_spaces *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->sp[i].lits);
		free(s->sp[i].mask);
	}
	for (size_t i = 0; i < s->nwl; i++) {
		tfs_secure_free(s->wl[i]->data, s->wl[i]->size);
		free(s->wl[i]->off);
		free(s->wl[i]->len);
		free(s->wl[i]);
	}
	free(s->wl);
	free(s->sp);
	free(s);
}

static space *push(tfs_audit_spaces *s, tfs_error *err)
{
	if (s->n >= MAX_SPACES) {
		tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET, "more than %d candidate spaces",
		              MAX_SPACES);
		return NULL;
	}
	space *p = realloc(s->sp, (s->n + 1) * sizeof(*p));
	if (p == NULL) {
		tfs_nomem(err);
		return NULL;
	}
	s->sp = p;
	memset(&p[s->n], 0, sizeof(p[s->n]));
	return &p[s->n++];
}

int tfs_audit_spaces_add_common(tfs_audit_spaces *s, tfs_error *err)
{
	space *sp = push(s, err);
	if (sp == NULL)
		return err->code;
	sp->kind = TFS_AUDIT_COMMON;
	sp->size = audit_common_pin_count;
	sp->size_f = (double)sp->size;
	return TFS_OK;
}

int tfs_audit_spaces_add_digits(tfs_audit_spaces *s, unsigned length, tfs_error *err)
{
	if (length < 1 || length > 19)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "all-digit PINs of length %u: give 1 to 19", length);
	space *sp = push(s, err);
	if (sp == NULL)
		return err->code;
	sp->kind = TFS_AUDIT_DIGITS;
	sp->length = length;
	sp->size = 1;
	for (unsigned i = 0; i < length; i++) {
		sp->set[i] = DIGITS;
		sp->setlen[i] = 10;
		sp->size *= 10;
	}
	sp->size_f = (double)sp->size;
	return TFS_OK;
}

int tfs_audit_spaces_add_wordlist(tfs_audit_spaces *s, const uint8_t *data, size_t size,
                                  size_t min_len, size_t max_len, tfs_error *err)
{
	if (max_len > TFS_AUDIT_PIN_MAX)
		max_len = TFS_AUDIT_PIN_MAX;
	wordlist *w = calloc(1, sizeof(*w));
	wordlist **wl = w != NULL ? realloc(s->wl, (s->nwl + 1) * sizeof(*wl)) : NULL;
	if (wl == NULL) {
		free(w);
		return tfs_nomem(err);
	}
	s->wl = wl;
	s->wl[s->nwl++] = w; /* owned from here on, also on error */
	w->data = malloc(size > 0 ? size : 1);
	if (w->data == NULL)
		return tfs_nomem(err);
	memcpy(w->data, data, size);
	w->size = size;
	size_t lines = 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	lines++;
	w->off = malloc(lines * sizeof(size_t));
	w->len = malloc(lines * sizeof(size_t));
	if (w->off == NULL || w->len == NULL)
		return tfs_nomem(err);
	for (size_t start = 0; start < size;) {
		const uint8_t *nl = memchr(w->data + start, '\n', size - start);
		size_t end = nl != NULL ? (size_t)(nl - w->data) : size;
		size_t len = end - start;
		if (len > 0 && w->data[start + len - 1] == '\r')
			len--;
		if (len >= min_len && len <= max_len) {
			w->off[w->n] = start;
			w->len[w->n++] = len;
		}
		start = end + 1;
	}
	if (w->n == 0)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "the wordlist has no line of %zu to %zu bytes", min_len, max_len);
	space *sp = push(s, err);
	if (sp == NULL)
		return err->code;
	sp->kind = TFS_AUDIT_WORDLIST;
	sp->words = w;
	sp->size = w->n;
	sp->size_f = (double)w->n;
	return TFS_OK;
}

/* Parses a mask into charsets; lits gets one byte per literal position.
 * Returns the number of positions, or -1 (err set). */
static int parse_mask(const char *mask, const char **set, uint8_t *setlen, char *lits,
                      tfs_error *err)
{
	int n = 0;
	for (size_t i = 0; mask[i] != '\0'; i++) {
		if (n >= TFS_AUDIT_PIN_MAX) {
			tfs_error_set(err, TFS_E_LIMIT, TFS_NO_OFFSET,
			              "mask: more than %d positions", TFS_AUDIT_PIN_MAX);
			return -1;
		}
		const char *cs = NULL;
		if (mask[i] == '?') {
			switch (mask[i + 1]) {
			case 'd': cs = DIGITS; break;
			case 'l': cs = LOWER; break;
			case 'u': cs = UPPER; break;
			case 's': cs = SPECIAL; break;
			case 'a': cs = ALL; break;
			case '?': break;
			default: {
				/* the byte after '?' as text, or in hex: it may be a
				 * control character, and messages are one line */
				unsigned char b = (unsigned char)mask[i + 1];
				char shown[8];
				if (b > 0x20 && b < 0x7f)
					snprintf(shown, sizeof(shown), "'?%c'", b);
				else
					snprintf(shown, sizeof(shown), "'?\\x%02x'", b);
				if (b == 0)
					tfs_error_set(err, TFS_E_INVALID, (uint64_t)i,
					              "mask: a '?' at the end: use ?d ?l ?u ?s ?a, or ?? for a "
					              "literal '?'");
				else
					tfs_error_set(err, TFS_E_INVALID, (uint64_t)i,
					              "mask: %s is not a charset: use ?d ?l ?u ?s ?a, or ?? for "
					              "a literal '?'", shown);
				return -1;
			}
			}
			i++;
		}
		if (cs != NULL) {
			set[n] = cs;
			setlen[n] = (uint8_t)strlen(cs);
		} else {
			lits[n] = mask[i];
			set[n] = &lits[n];
			setlen[n] = 1;
		}
		n++;
	}
	if (n == 0)
		tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET, "mask: empty");
	return n > 0 ? n : -1;
}

int tfs_audit_mask_size(double *out, const char *mask, tfs_error *err)
{
	const char *set[TFS_AUDIT_PIN_MAX];
	uint8_t setlen[TFS_AUDIT_PIN_MAX];
	char lits[TFS_AUDIT_PIN_MAX];
	int n = parse_mask(mask, set, setlen, lits, err);
	if (n < 0)
		return err->code;
	double size = 1;
	for (int i = 0; i < n; i++)
		size *= setlen[i];
	*out = size;
	return TFS_OK;
}

int tfs_audit_spaces_add_mask(tfs_audit_spaces *s, const char *mask, size_t min_len,
                              size_t max_len, tfs_error *err)
{
	const char *set[TFS_AUDIT_PIN_MAX];
	uint8_t setlen[TFS_AUDIT_PIN_MAX];
	char lits[TFS_AUDIT_PIN_MAX];
	int n = parse_mask(mask, set, setlen, lits, err);
	if (n < 0)
		return err->code;
	size_t lo = min_len, hi = max_len;
	if (lo == 0 && hi == 0)
		lo = hi = (size_t)n;
	if (lo == 0)
		lo = 1;
	if (hi == 0 || hi > (size_t)n)
		hi = (size_t)n;
	if (lo > hi)
		return tfs_error_set(err, TFS_E_INVALID, TFS_NO_OFFSET,
		                     "mask: %d positions; no candidate length from %zu to %zu", n,
		                     min_len, max_len);
	for (size_t len = lo; len <= hi; len++) {
		space *sp = push(s, err);
		if (sp == NULL)
			return err->code;
		sp->kind = TFS_AUDIT_MASK;
		sp->length = (unsigned)len;
		sp->lits = malloc(TFS_AUDIT_PIN_MAX);
		sp->mask = malloc(2 * len + 1);
		if (sp->lits == NULL || sp->mask == NULL)
			return tfs_nomem(err);
		memcpy(sp->lits, lits, TFS_AUDIT_PIN_MAX);
		sp->size = 1;
		sp->size_f = 1;
		size_t m = 0;
		for (size_t i = 0; i < len; i++) {
			bool literal = set[i] == &lits[i];
			sp->set[i] = literal ? &sp->lits[i] : set[i];
			sp->setlen[i] = setlen[i];
			sp->size_f *= setlen[i];
			sp->size = sp->size > UINT64_MAX / setlen[i] ? UINT64_MAX : sp->size * setlen[i];
			/* the prefix as mask text again, for reports */
			if (literal && lits[i] == '?') {
				sp->mask[m++] = '?';
				sp->mask[m++] = '?';
			} else if (literal) {
				sp->mask[m++] = lits[i];
			} else {
				sp->mask[m++] = '?';
				sp->mask[m++] = set[i] == DIGITS ? 'd' : set[i] == LOWER ? 'l' :
				                set[i] == UPPER ? 'u' : set[i] == SPECIAL ? 's' : 'a';
			}
		}
		sp->mask[m] = '\0';
	}
	return TFS_OK;
}

size_t tfs_audit_space_count(const tfs_audit_spaces *s)
{
	return s->n;
}

tfs_audit_kind tfs_audit_space_kind(const tfs_audit_spaces *s, size_t i)
{
	return s->sp[i].kind;
}

unsigned tfs_audit_space_length(const tfs_audit_spaces *s, size_t i)
{
	return s->sp[i].length;
}

const char *tfs_audit_space_mask(const tfs_audit_spaces *s, size_t i)
{
	return s->sp[i].mask;
}

double tfs_audit_space_size(const tfs_audit_spaces *s, size_t i)
{
	return s->sp[i].size_f;
}

uint64_t tfs_audit_spaces_total(const tfs_audit_spaces *s)
{
	uint64_t t = 0;
	for (size_t i = 0; i < s->n; i++)
		t = t > UINT64_MAX - s->sp[i].size ? UINT64_MAX : t + s->sp[i].size;
	return t;
}

bool tfs_audit_spaces_candidate(const tfs_audit_spaces *s, uint64_t index, uint8_t *buf,
                                size_t *len, size_t *space_out)
{
	for (size_t k = 0; k < s->n; k++) {
		const space *sp = &s->sp[k];
		if (index >= sp->size) {
			index -= sp->size;
			continue;
		}
		*space_out = k;
		switch (sp->kind) {
		case TFS_AUDIT_COMMON: {
			const char *p = audit_common_pins[index];
			*len = strlen(p);
			memcpy(buf, p, *len);
			return true;
		}
		case TFS_AUDIT_WORDLIST:
			*len = sp->words->len[index];
			memcpy(buf, sp->words->data + sp->words->off[index], *len);
			return true;
		case TFS_AUDIT_DIGITS:
		case TFS_AUDIT_MASK:
			for (unsigned p = sp->length; p-- > 0;) {
				buf[p] = (uint8_t)sp->set[p][index % sp->setlen[p]];
				index /= sp->setlen[p];
			}
			*len = sp->length;
			return true;
		}
		return false;
	}
	return false;
}

double tfs_audit_seconds(double size, double rate)
{
	return rate > 0 ? size / rate : INFINITY;
}

const double tfs_audit_limit_seconds[3] = {3600.0, 86400.0, 365.25 * 86400.0};

unsigned tfs_audit_digits_within(double rate, double seconds)
{
	unsigned best = 0;
	double size = 1e4;
	for (unsigned len = 4; len <= 19; len++, size *= 10)
		if (tfs_audit_seconds(size, rate) <= seconds)
			best = len;
	return best;
}
