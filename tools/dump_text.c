/*
 * The human-readable dump. One header block per token, then each object
 * with one line per attribute: name, kind, value. Text attributes (labels)
 * show as text when they hold text; every other byte string as hex, folded
 * at 16 bytes with a printable column like hexdump -C.
 */
#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "dump.h"
#include "tokenfs/text.h"

#define NAME_WIDTH 30

static const uint64_t CK_UNAVAILABLE = 0xFFFFFFFFFFFFFFFFull;

const char *dump_ulong_name(uint64_t attr_type, uint64_t value)
{
	tfs_name_space ns;
	if (tfs_name_space_of_attr(attr_type, &ns) != 0)
		return NULL;
	return tfs_name(ns, value);
}

static void print_flags(FILE *out, uint64_t flags)
{
	fprintf(out, "0x%" PRIx64, flags);
	for (int bit = 0; bit < 64; bit++) {
		uint64_t f = 1ull << bit;
		if (!(flags & f))
			continue;
		const char *n = tfs_name(TFS_NS_CKF, f);
		if (n != NULL)
			fprintf(out, " %s", n);
		else
			fprintf(out, " 0x%" PRIx64, f);
	}
}

static const char *blob_text(bool present, const cli_blob_use *use)
{
	if (!present)
		return NULL;
	if (use->result == CLI_PIN_WRONG)
		return "present (wrong PIN)";
	return use->layout == TFS_LAYOUT_NONE ? "present" : tfs_layout_name(use->layout);
}

static void text_token_begin(dump_sink *s, const tfs_token *tok, const dump_token_info *info)
{
	FILE *out = s->out;
	char b[4 * 4096 + 8]; /* label, serial and path come from the store */
	if (!s->first_token)
		fputc('\n', out);
	s->first_token = false;
	s->first_object = true;
	if (tfs_token_metadata(tok) == NULL) {
		fprintf(out, "Directory %s (no readable token.object)\n",
		        cli_safe(tfs_token_path(tok), b, sizeof(b)));
	} else {
		fprintf(out, "Token \"%s\"\n", cli_safe(tfs_token_label(tok), b, sizeof(b)));
		fprintf(out, "  %-12s %s\n", "directory:", cli_safe(tfs_token_path(tok), b, sizeof(b)));
		fprintf(out, "  %-12s %s\n", "serial:", cli_safe(tfs_token_serial(tok), b, sizeof(b)));
		if (info->uri != NULL) /* p11-kit percent-encodes all but [A-Za-z0-9._-] */
			fprintf(out, "  %-12s %s\n", "uri:", info->uri);
		uint32_t slot;
		if (tfs_token_slot_id(tok, &slot))
			fprintf(out, "  %-12s %" PRIu32 " (0x%" PRIx32 ")\n", "slot id:", slot, slot);
		uint64_t v;
		if (tfs_token_flags(tok, &v)) {
			fprintf(out, "  %-12s ", "flags:");
			print_flags(out, v);
			fputc('\n', out);
		}
		size_t n;
		const char *so = blob_text(tfs_token_pin_blob(tok, TFS_PIN_SO, &n) != NULL, &info->so);
		const char *user = blob_text(tfs_token_pin_blob(tok, TFS_PIN_USER, &n) != NULL, &info->user);
		fprintf(out, "  %-12s SO %s, user %s\n", "PIN blobs:", so ? so : "absent",
		        user ? user : "absent");
		if (info->token_key != NULL) {
			fprintf(out, "  %-12s ", "token key:");
			for (size_t i = 0; i < TFS_KEY_LEN; i++)
				fprintf(out, "%02x", info->token_key[i]);
			fputc('\n', out);
		}
		if (tfs_token_generation(tok, &v))
			fprintf(out, "  %-12s %" PRIu64 "\n", "generation:", v);
		else
			fprintf(out, "  %-12s %s\n", "generation:", "(no generation file)");
	}
	fprintf(out, "  %-12s %zu\n", "objects:", tfs_token_object_count(tok));
}

/* hexdump -C style lines, each built in a buffer: formatting every byte
 * with fprintf was a third of dump's time. */
static void hex_lines(FILE *out, const uint8_t *p, size_t n, int indent)
{
	static const char digits[] = "0123456789abcdef";
	char line[160];
	if (indent < 0 || indent > 64)
		indent = 64; /* a guard for line[]: real nesting is a few levels */
	for (size_t off = 0; off < n; off += 16) {
		/* "%*s%04zx " by hand: a snprintf a line was a tenth of a dump. */
		size_t k = (size_t)indent;
		memset(line, ' ', k);
		char o[20];
		size_t d = sizeof(o), v = off;
		do {
			o[--d] = digits[v & 15];
			v >>= 4;
		} while (v != 0);
		while (sizeof(o) - d < 4)
			o[--d] = '0';
		memcpy(line + k, o + d, sizeof(o) - d);
		k += sizeof(o) - d;
		line[k++] = ' ';
		for (size_t i = 0; i < 16; i++) {
			if (i == 8)
				line[k++] = ' ';
			line[k++] = ' ';
			line[k++] = off + i < n ? digits[p[off + i] >> 4] : ' ';
			line[k++] = off + i < n ? digits[p[off + i] & 15] : ' ';
		}
		line[k++] = ' ';
		line[k++] = ' ';
		line[k++] = '|';
		for (size_t i = 0; i < 16 && off + i < n; i++)
			line[k++] = isprint(p[off + i]) ? (char)p[off + i] : '.';
		line[k++] = '|';
		line[k++] = '\n';
		fwrite(line, 1, k, out);
	}
}

static void print_attr(FILE *out, const tfs_attr *a, const dump_value *v, int indent);

/* Text attributes show at most this many bytes of their text. */
#define SHOW_TEXT 256

static void print_bytes(FILE *out, const tfs_attr *a, const dump_value *v, int indent)
{
	size_t n;
	tfs_attr_bytes(a, &n);
	if (v == NULL) { /* no view (out of memory): show nothing that could be a key */
		fprintf(out, "%zu bytes (not shown)\n", n);
		return;
	}
	const uint8_t *p = v->bytes;
	n = v->len;
	bool enc = v->encrypted && !v->decrypted;
	const char *mark = !v->decrypted ? ""
	                   : v->layout == TFS_LAYOUT_GCM ? " [decrypted, gcm]" : " [decrypted, cbc]";
	if (v->redacted) {
		fprintf(out, "<redacted: %zu bytes%s> %s%s\n", n, enc ? ", stored encrypted" : "",
		        v->fingerprint, mark);
	} else if (n == 0) {
		fprintf(out, "(empty)%s\n", mark);
	} else if (v->text) {
		char t[TFS_ESCAPE_SIZE(SHOW_TEXT)];
		size_t shown = tfs_text_cut(p, n, SHOW_TEXT);
		tfs_escape(t, sizeof(t), p, shown, TFS_ESC_TERMINAL);
		if (shown < n)
			fprintf(out, "\"%s...\" (%zu bytes)%s\n", t, n, mark);
		else
			fprintf(out, "\"%s\"%s\n", t, mark);
	} else if (!enc && n <= 16) {
		static const char digits[] = "0123456789abcdef";
		char h[2 * 16];
		for (size_t i = 0; i < n; i++) {
			h[2 * i] = digits[p[i] >> 4];
			h[2 * i + 1] = digits[p[i] & 15];
		}
		fwrite(h, 1, 2 * n, out);
		fputs(mark, out);
		fputc('\n', out);
	} else if (v->decoded != NULL && n > 64) {
		/* Decoded below; the raw bytes are in the JSON output. */
		fprintf(out, "%zu bytes of %s%s\n", n, tfs_decoded_kind(v->decoded), mark);
	} else {
		fprintf(out, "%zu bytes%s%s\n", n, enc ? ", encrypted" : "", mark);
		hex_lines(out, p, n, indent + 4);
	}
	if (v != NULL && v->error != NULL)
		fprintf(out, "%*s(not decrypted: %s)\n", indent + 4, "", v->error);
	char b[4 * 4096 + 8]; /* decoded names come from the store */
	if (v != NULL && v->decode_error != NULL)
		fprintf(out, "%*s(not decoded: %s)\n", indent + 4, "", cli_safe(v->decode_error, b, sizeof(b)));
	if (v != NULL && v->decoded != NULL)
		for (size_t i = 0; i < tfs_decoded_count(v->decoded); i++) {
			for (int sp = 0; sp < indent + 4; sp++)
				fputc(' ', out);
			fputs(tfs_decoded_name(v->decoded, i), out);
			fputs(": ", out);
			fputs(cli_safe(tfs_decoded_value(v->decoded, i), b, sizeof(b)), out);
			fputc('\n', out);
		}
}

static void print_value(FILE *out, const tfs_attr *a, const dump_value *v, int indent)
{
	uint64_t type = tfs_attr_type(a);
	switch (tfs_attr_kind(a)) {
	case TFS_KIND_BOOL: {
		uint8_t raw = tfs_attr_bool_raw(a);
		fputs(raw ? "true" : "false", out);
		if (raw != 0 && raw != 0xff)
			fprintf(out, " (stored as 0x%02x)", raw);
		fputc('\n', out);
		break;
	}
	case TFS_KIND_ULONG: {
		uint64_t u = tfs_attr_ulong(a);
		const char *n = dump_ulong_name(type, u);
		if (u == CK_UNAVAILABLE)
			fputs("CK_UNAVAILABLE_INFORMATION\n", out);
		else if (n != NULL)
			fprintf(out, "%s (0x%" PRIx64 ")\n", n, u);
		else
			fprintf(out, "%" PRIu64 "\n", u);
		break;
	}
	case TFS_KIND_BYTES:
		print_bytes(out, a, v, indent);
		break;
	case TFS_KIND_MAP:
		fprintf(out, "%zu entr%s\n", tfs_attr_map_count(a),
		        tfs_attr_map_count(a) == 1 ? "y" : "ies");
		for (size_t i = 0; i < tfs_attr_map_count(a); i++)
			print_attr(out, tfs_attr_map_entry(a, i),
			           v != NULL && v->entries != NULL ? &v->entries[i] : NULL, indent + 4);
		break;
	case TFS_KIND_MECHS:
		if (tfs_attr_mech_count(a) == 0)
			fputs("(none)", out);
		for (size_t i = 0; i < tfs_attr_mech_count(a); i++) {
			uint64_t m = tfs_attr_mech(a, i);
			const char *n = tfs_name(TFS_NS_CKM, m);
			fputs(i ? ", " : "", out);
			if (n != NULL)
				fputs(n, out);
			else
				fprintf(out, "0x%" PRIx64, m);
		}
		fputc('\n', out);
		break;
	}
}

/* v is the view of a byte string or map (NULL only when out of memory). */
static void print_attr(FILE *out, const tfs_attr *a, const dump_value *v, int indent)
{
	const char *name = tfs_name(TFS_NS_CKA, tfs_attr_type(a));
	char hex[24];
	if (name == NULL) {
		snprintf(hex, sizeof(hex), "0x%" PRIx64, tfs_attr_type(a));
		name = hex;
	}
	/* "%*s%-*s %-6s " built by hand: fprintf's padding was half the
	 * instructions of a plain dump. "mechanisms" runs past 6: fine. */
	char line[256];
	size_t k = 0, n = strlen(name);
	const char *kind = tfs_kind_name(tfs_attr_kind(a));
	size_t kn = strlen(kind);
	if ((size_t)indent + n + kn + NAME_WIDTH + 8 <= sizeof(line)) {
		memset(line, ' ', (size_t)indent);
		k = (size_t)indent;
		memcpy(line + k, name, n);
		k += n;
		while (k < (size_t)indent + NAME_WIDTH)
			line[k++] = ' ';
		line[k++] = ' ';
		memcpy(line + k, kind, kn);
		for (size_t e = k + 6; k + kn < e; kn++)
			line[k + kn] = ' ';
		k += kn;
		line[k++] = ' ';
		fwrite(line, 1, k, out);
	} else {
		fprintf(out, "%*s%-*s %-6s ", indent, "", NAME_WIDTH, name, kind);
	}
	print_value(out, a, v, indent);
	if (tfs_attr_is_shadowed(a))
		fprintf(out, "%*s(repeated later in the file; SoftHSM uses the last one)\n",
		        indent + 4, "");
}

static void text_object(dump_sink *s, const tfs_token *tok, size_t i, const tfs_object *obj,
                        const dump_value *values, const char *summary, const tfs_error *err)
{
	FILE *out = s->out;
	char b[4 * 4096 + 8];
	if (s->brief) {
		fprintf(out, "%s  %s  ", s->first_object ? "\n" : "",
		        cli_safe(tfs_token_object_uuid(tok, i), b, sizeof(b)));
		fprintf(out, "%s\n", obj == NULL ? "unreadable" : cli_safe(summary, b, sizeof(b)));
		s->first_object = false;
		return;
	}
	fprintf(out, "\n  Object %s", cli_safe(tfs_token_object_uuid(tok, i), b, sizeof(b)));
	if (obj == NULL) {
		fprintf(out, ": unreadable: %s\n", cli_safe(err->what, b, sizeof(b)));
		return;
	}
	fprintf(out, " (generation %" PRIu64 ", %s)\n    %s\n", tfs_object_generation(obj),
	        tfs_object_is_private(obj) ? "private" : "public", cli_safe(summary, b, sizeof(b)));
	if (s->object_uri != NULL)
		fprintf(out, "    uri: %s\n", s->object_uri);
	else if (s->object_uri_unknown != NULL)
		fprintf(out, "    uri: (none: %s)\n", cli_safe(s->object_uri_unknown, b, sizeof(b)));
	for (size_t k = 0; k < tfs_object_attr_count(obj); k++)
		print_attr(out, tfs_object_attr(obj, k), &values[k], 4);
}

static void text_token_end(dump_sink *s, const tfs_token *tok, const dump_key *keys, size_t n)
{
	(void)tok;
	if (n == 0)
		return;
	fprintf(s->out, "\n  Keys (private key, public key and certificate by CKA_ID and public key)\n");
	char b[4 * 4096 + 8]; /* uuids are file names from the store */
	for (size_t i = 0; i < n; i++) {
		const dump_key *k = &keys[i];
		fprintf(s->out, "    id %s  %s\n", k->id, k->summary[0] ? k->summary : "");
		if (k->private_uuid)
			fprintf(s->out, "      private key  %s\n", cli_safe(k->private_uuid, b, sizeof(b)));
		if (k->public_uuid)
			fprintf(s->out, "      public key   %s\n", cli_safe(k->public_uuid, b, sizeof(b)));
		if (k->cert_uuid)
			fprintf(s->out, "      certificate  %s\n", cli_safe(k->cert_uuid, b, sizeof(b)));
	}
}

static void text_finish(dump_sink *s)
{
	(void)s;
}

void dump_text_init(dump_sink *s, FILE *out, bool brief)
{
	*s = (dump_sink){
		.out = out,
		.brief = brief,
		.first_token = true,
		.token_begin = text_token_begin,
		.object = text_object,
		.token_end = text_token_end,
		.finish = text_finish,
	};
}
