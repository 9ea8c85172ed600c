/*
 * libFuzzer target: every output format of dump (text, JSON, softhsm) over
 * an in-memory store (fuzz_memstore.h's image), through the tool's own
 * renderers (tools/dump_*.c, json_writer.c, render_softhsm.c, escape.c).
 * Each token is shown as `dump --user-pin` would with the fixed PIN
 * "user-pin-1" (testdata/store's demo token: the seeds decrypt), the first
 * input byte choosing --reveal.
 *
 * Invariants, each an abort:
 * - no output holds a byte a terminal acts on (C0 but newline, DEL, bytes
 *   that are not UTF-8) or a bidi control, whatever the file names, labels
 *   and values (escape.h);
 * - the JSON output parses;
 * - without --reveal, no key-material attribute or map entry of the JSON
 *   output has a "value", and --format softhsm would refuse every file
 *   that holds some (tfs_softhsm_shows_key_material).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <p11-kit/pkcs11.h>

#include "dump.h"
#include "fuzz_memstore.h"
#include "pairing.h"
#include "tokenfs/softhsm_dump.h"
#include "core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t PIN[] = "user-pin-1";

static bool bidi(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
	       cp == 0x200f || cp == 0x061c;
}

static void check_safe(const char *out, size_t n)
{
	const uint8_t *p = (const uint8_t *)out;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = tfs_utf8_decode(p + i, n - i, &cp);
		if (len == 0 || (cp < 0x20 && cp != '\n') || (cp >= 0x7f && cp < 0xa0) || bidi(cp))
			abort();
		i += len;
	}
}

/* Whether a byte string (or map entry) holds key material to redact. */
static bool material(const tfs_object *obj, const tfs_attr *a, bool entry)
{
	size_t n = 0;
	if (tfs_attr_kind(a) != TFS_KIND_BYTES || tfs_attr_bytes(a, &n) == NULL || n == 0)
		return false;
	return entry ? tfs_is_key_material(CKO_SECRET_KEY, tfs_attr_type(a))
	             : tfs_object_attr_is_key_material(obj, a);
}

/* Without --reveal, no JSON attribute of key material has a "value":
 * checked on the structure, so equal bytes elsewhere cannot confuse it. */
static void check_redacted(const tfs_object *obj, json_object *jobj)
{
	json_object *attrs;
	if (!json_object_object_get_ex(jobj, "attributes", &attrs) ||
	    json_object_array_length(attrs) != tfs_object_attr_count(obj))
		abort();
	for (size_t k = 0; k < tfs_object_attr_count(obj); k++) {
		const tfs_attr *a = tfs_object_attr(obj, k);
		json_object *ja = json_object_array_get_idx(attrs, k), *v;
		if (material(obj, a, false) && json_object_object_get_ex(ja, "value", &v))
			abort();
		if (tfs_attr_kind(a) != TFS_KIND_MAP || !json_object_object_get_ex(ja, "value", &v))
			continue;
		for (size_t i = 0; i < tfs_attr_map_count(a); i++) {
			json_object *je = json_object_array_get_idx(v, i), *ev;
			if (material(obj, tfs_attr_map_entry(a, i), true) &&
			    json_object_object_get_ex(je, "value", &ev))
				abort();
		}
	}
}

/* One token through a sink, as cmd_dump.c's walk does. */
static void render_token(dump_sink *sink, const tfs_token *tok, bool reveal, bool check)
{
	tfs_token_key *key = NULL;
	dump_token_info info = {0};
	tfs_error err;
	if (tfs_token_metadata(tok) != NULL &&
	    tfs_token_unlock(&key, tok, TFS_PIN_USER, PIN, sizeof(PIN) - 1, &err) == TFS_OK) {
		info.user = (cli_blob_use){CLI_PIN_OPENED, tfs_token_key_layout(key)};
		if (reveal)
			info.token_key = tfs_token_key_bytes(key);
	}
	tfs_pairing *pairs = tfs_pairing_new();
	sink->token_begin(sink, tok, &info);
	for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
		tfs_object *obj = NULL;
		dump_value *views = NULL;
		char summary[1024] = "";
		int rc = tfs_token_load_object(&obj, tok, i, &err);
		if (rc == TFS_OK) {
			(void)dump_make_views(&views, obj, key, reveal);
			if (views == NULL) {
				tfs_object_free(obj);
				continue;
			}
			/* What dump prints for values that do not decrypt, as it does. */
			dump_report_views(views, obj, tfs_token_object_path(tok, i));
			dump_pairing_add(pairs, tfs_token_object_uuid(tok, i), obj, views, summary,
			                 sizeof(summary));
		}
		sink->object(sink, tok, i, obj, views, summary, rc == TFS_OK ? NULL : &err);
		if (obj != NULL) {
			fflush(sink->out);
			dump_free_views(views, obj);
			uint8_t *raw;
			size_t rsize;
			/* A file with key material must be one --format softhsm refuses. */
			if (check && tfs_token_read_object(&raw, &rsize, tok, i, &err) == TFS_OK) {
				bool any = false;
				for (size_t k = 0; k < tfs_object_attr_count(obj); k++) {
					const tfs_attr *a = tfs_object_attr(obj, k);
					any = any || material(obj, a, false);
					for (size_t e = 0; tfs_attr_kind(a) == TFS_KIND_MAP && e < tfs_attr_map_count(a); e++)
						any = any || material(obj, tfs_attr_map_entry(a, e), true);
				}
				if (any && !tfs_softhsm_shows_key_material(raw, rsize))
					abort();
				free(raw);
			}
		}
		tfs_object_free(obj);
	}
	size_t nkeys = 0;
	const dump_key *keys = pairs != NULL ? tfs_pairing_keys(pairs, &nkeys) : NULL;
	sink->token_end(sink, tok, keys, nkeys);
	tfs_pairing_free(pairs);
	tfs_token_key_free(key);
}

static void render_store(const tfs_store *store, bool json, bool reveal)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	if (f == NULL)
		return;
	dump_sink sink;
	if (json)
		dump_json_init(&sink, f);
	else
		dump_text_init(&sink, f, false);
	for (size_t t = 0; t < tfs_store_token_count(store); t++)
		render_token(&sink, tfs_store_token(store, t), reveal, !json);
	sink.finish(&sink);
	fclose(f);
	check_safe(out, n);
	if (json) {
		json_object *doc = json_tokener_parse(out), *toks;
		if (doc == NULL || !json_object_object_get_ex(doc, "tokens", &toks))
			abort();
		for (size_t t = 0; !reveal && t < tfs_store_token_count(store); t++) {
			const tfs_token *tok = tfs_store_token(store, t);
			json_object *objs;
			if (!json_object_object_get_ex(json_object_array_get_idx(toks, t), "objects", &objs))
				abort();
			for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
				tfs_object *obj;
				tfs_error err;
				if (tfs_token_load_object(&obj, tok, i, &err) == TFS_OK) {
					check_redacted(obj, json_object_array_get_idx(objs, i));
					tfs_object_free(obj);
				}
			}
		}
		json_object_put(doc);
	}
	free(out);
}

/* --format softhsm of every object file, with --reveal (its own check is
 * above): names and bytes must come out safe. */
static void render_softhsm(const tfs_store *store)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	if (f == NULL)
		return;
	for (size_t t = 0; t < tfs_store_token_count(store); t++) {
		const tfs_token *tok = tfs_store_token(store, t);
		for (size_t i = 0; i < tfs_token_object_count(tok); i++) {
			uint8_t *raw;
			size_t rsize;
			tfs_error err;
			if (tfs_token_read_object(&raw, &rsize, tok, i, &err) != TFS_OK)
				continue;
			tfs_softhsm_dump(f, tfs_token_object_path(tok, i), raw, rsize);
			free(raw);
		}
	}
	fclose(f);
	check_safe(out, n);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool reveal = data[0] & 1;
	tfs_fs *fs = fuzz_memstore(data + 1, size - 1);
	tfs_store *store = NULL;
	tfs_error err;
	if (fs != NULL && tfs_store_open_fs(&store, fs, "s", NULL, &err) == TFS_OK) {
		render_store(store, false, reveal);
		render_store(store, true, reveal);
		render_softhsm(store);
		tfs_store_free(store);
	}
	tfs_fs_free(fs);
	return 0;
}
