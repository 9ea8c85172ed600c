/*
 * The JSON dump (docs/json.md). json-c builds and escapes each object; the
 * outer document is streamed around them, so a store of 20,000 objects never
 * sits in memory as one tree.
 */
#include <json-c/json.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "dump.h"
#include "json_writer.h"

static json_object *hex_string(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *s = malloc(2 * n + 1);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	json_object *j = json_object_new_string_len(s, (int)(2 * n));
	OPENSSL_cleanse(s, 2 * n); /* may be decrypted or revealed material */
	free(s);
	return j;
}

/* Integers up to 2^64-1: json-c's uint64 keeps them exact. */
static json_object *u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

static void write_attr(jw *w, const tfs_attr *a, const dump_value *v);

static void write_value(jw *w, const tfs_attr *a, const dump_value *v)
{
	switch (tfs_attr_kind(a)) {
	case TFS_KIND_BOOL:
		jw_bool(w, tfs_attr_bool(a));
		break;
	case TFS_KIND_ULONG:
		jw_u64(w, tfs_attr_ulong(a));
		break;
	case TFS_KIND_BYTES:
		jw_null(w); /* no view: out of memory; show nothing that could be a key */
		break;
	case TFS_KIND_MAP:
		jw_array(w);
		for (size_t i = 0; i < tfs_attr_map_count(a); i++)
			write_attr(w, tfs_attr_map_entry(a, i),
			           v != NULL && v->entries != NULL ? &v->entries[i] : NULL);
		jw_end_array(w);
		break;
	case TFS_KIND_MECHS:
		jw_array(w);
		for (size_t i = 0; i < tfs_attr_mech_count(a); i++)
			jw_u64(w, tfs_attr_mech(a, i));
		jw_end_array(w);
		break;
	}
}

/* Decoded fields as members; integers that fit 64 bits as numbers. */
static void write_decoded(jw *w, const tfs_decoded *d)
{
	jw_object(w);
	jw_key(w, "kind");
	jw_text(w, tfs_decoded_kind(d));
	jw_key(w, "summary");
	jw_text(w, tfs_decoded_summary(d));
	for (size_t i = 0; i < tfs_decoded_count(d); i++) {
		int64_t n;
		jw_key(w, tfs_decoded_name(d, i));
		if (tfs_decoded_type_of(d, i) == TFS_DECODED_INTEGER && tfs_decoded_int(d, i, &n))
			jw_i64(w, n);
		else if (tfs_decoded_type_of(d, i) == TFS_DECODED_BOOLEAN)
			jw_bool(w, strcmp(tfs_decoded_value(d, i), "true") == 0);
		else
			jw_text(w, tfs_decoded_value(d, i));
	}
	jw_end_object(w);
}

/* The members a byte string's view adds: decrypted plaintext, or a
 * redaction with a fingerprint instead of the value. */
static void write_view(jw *w, const dump_value *v)
{
	if (v->encrypted) {
		jw_key(w, "encrypted");
		jw_bool(w, true);
	}
	if (v->decrypted) {
		jw_key(w, "decrypted");
		jw_bool(w, true);
		jw_key(w, "layout");
		jw_string(w, tfs_layout_name(v->layout));
	}
	if (v->error != NULL) {
		jw_key(w, "decrypt_error");
		jw_string(w, v->error);
	}
	if (v->decode_error != NULL) {
		jw_key(w, "decode_error");
		jw_text(w, v->decode_error);
	}
	if (v->decoded != NULL) {
		jw_key(w, "decoded");
		write_decoded(w, v->decoded);
	}
	if (v->redacted) {
		jw_key(w, "redacted");
		jw_bool(w, true);
		jw_key(w, "length");
		jw_u64(w, v->len);
		jw_key(w, "fingerprint");
		jw_string(w, v->fingerprint);
	} else {
		jw_key(w, "value");
		jw_hex(w, v->bytes, v->len);
	}
	if (v->text) {
		/* Beside the bytes, so that .value stays bytes and .text reads. */
		char *t = malloc(v->len + 1);
		if (t != NULL) {
			memcpy(t, v->bytes, v->len);
			t[v->len] = '\0';
			jw_key(w, "text");
			jw_text(w, t);
			OPENSSL_cleanse(t, v->len);
			free(t);
		}
	}
}

/* v is the view of a byte string or map (NULL only when out of memory). */
static void write_attr(jw *w, const tfs_attr *a, const dump_value *v)
{
	uint64_t type = tfs_attr_type(a);
	const char *name = tfs_name(TFS_NS_CKA, type);
	jw_object(w);
	jw_key(w, "type");
	jw_u64(w, type);
	jw_key(w, "name");
	if (name != NULL)
		jw_string(w, name);
	else
		jw_null(w);
	jw_key(w, "kind");
	jw_string(w, tfs_kind_name(tfs_attr_kind(a)));
	jw_key(w, "offset");
	jw_u64(w, tfs_attr_offset(a));
	if (v != NULL && tfs_attr_kind(a) == TFS_KIND_BYTES) {
		write_view(w, v);
	} else {
		jw_key(w, "value");
		write_value(w, a, v);
	}
	if (tfs_attr_kind(a) == TFS_KIND_ULONG) {
		const char *vn = dump_ulong_name(type, tfs_attr_ulong(a));
		if (vn != NULL) {
			jw_key(w, "value_name");
			jw_string(w, vn);
		}
	}
	if (tfs_attr_is_shadowed(a)) {
		jw_key(w, "shadowed");
		jw_bool(w, true);
	}
	jw_end_object(w);
}

/*
 * json-c frees without wiping, and values may be decrypted plaintext or
 * revealed keys: wipe every string in the tree before releasing it.
 */
static void wipe_tree(json_object *j)
{
	switch (json_object_get_type(j)) {
	case json_type_string:
		OPENSSL_cleanse((char *)json_object_get_string(j), (size_t)json_object_get_string_len(j));
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(j); i++)
			wipe_tree(json_object_array_get_idx(j, i));
		break;
	case json_type_object: {
		json_object_object_foreach(j, key, val) {
			(void)key;
			wipe_tree(val);
		}
		break;
	}
	default:
		break;
	}
}

/* Serialises j to out and releases it, wiping its text and its strings.
 * With `open`, the closing brace is left off so members can follow. */
static void emit_ext(FILE *out, json_object *j, bool open)
{
	char *txt = (char *)json_object_to_json_string_ext(
		j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(txt);
	fwrite(txt, 1, open ? len - 1 : len, out);
	OPENSSL_cleanse(txt, len);
	wipe_tree(j);
	json_object_put(j);
}

static void emit(FILE *out, json_object *j)
{
	emit_ext(out, j, false);
}

static json_object *str_or_null(const char *s)
{
	return s[0] ? cli_json_string(s) : NULL;
}

static void add_blob(json_object *blobs, const char *role, bool present, const cli_blob_use *use)
{
	if (!present)
		return;
	json_object *b = json_object_new_object();
	/* The layout is known only for a blob its PIN unwrapped. */
	json_object_object_add(b, "layout", use->layout == TFS_LAYOUT_NONE ? NULL
	                                    : json_object_new_string(tfs_layout_name(use->layout)));
	const char *pin = cli_pin_result_name(use->result);
	json_object_object_add(b, "pin", pin != NULL ? json_object_new_string(pin) : NULL);
	json_object_object_add(blobs, role, b);
}

static void json_token_begin(dump_sink *s, const tfs_token *tok, const dump_token_info *info)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "dir", cli_json_string(tfs_token_path(tok)));
	json_object_object_add(j, "label", str_or_null(tfs_token_label(tok)));
	json_object_object_add(j, "serial", str_or_null(tfs_token_serial(tok)));
	json_object_object_add(j, "uri", info->uri != NULL ? json_object_new_string(info->uri) : NULL);
	uint32_t slot;
	json_object_object_add(j, "slot_id", tfs_token_slot_id(tok, &slot) ? u64(slot) : NULL);
	uint64_t v;
	json_object_object_add(j, "flags", tfs_token_flags(tok, &v) ? u64(v) : NULL);
	json_object_object_add(j, "generation", tfs_token_generation(tok, &v) ? u64(v) : NULL);
	json_object *blobs = json_object_new_object();
	size_t n;
	add_blob(blobs, "so", tfs_token_pin_blob(tok, TFS_PIN_SO, &n) != NULL, &info->so);
	add_blob(blobs, "user", tfs_token_pin_blob(tok, TFS_PIN_USER, &n) != NULL, &info->user);
	json_object_object_add(j, "pin_blobs", blobs);
	if (info->token_key != NULL)
		json_object_object_add(j, "token_key", hex_string(info->token_key, TFS_KEY_LEN));
	json_object_object_add(j, "metadata", json_object_new_boolean(tfs_token_metadata(tok) != NULL));
	/* Stream: print the header object without its closing brace, then the
	 * objects array one object at a time. */
	fputs(s->first_token ? "\n" : ",\n", s->out);
	emit_ext(s->out, j, true);
	fputs(",\"objects\":[", s->out);
	s->first_token = false;
	s->first_object = true;
}

static void json_object_cb(dump_sink *s, const tfs_token *tok, size_t i, const tfs_object *obj,
                           const dump_value *values, const char *summary, const tfs_error *err)
{
	fputs(s->first_object ? "\n" : ",\n", s->out);
	s->first_object = false;
	jw w;
	jw_init(&w, s->out);
	jw_object(&w);
	jw_key(&w, "uuid");
	jw_text(&w, tfs_token_object_uuid(tok, i));
	jw_key(&w, "file");
	jw_text(&w, tfs_token_object_file(tok, i));
	if (obj == NULL) {
		char buf[1200];
		jw_key(&w, "error");
		jw_text(&w, tfs_error_format(err, buf, sizeof(buf)));
	} else {
		jw_key(&w, "generation");
		jw_u64(&w, tfs_object_generation(obj));
		jw_key(&w, "summary");
		jw_text(&w, summary);
		jw_key(&w, "private");
		jw_bool(&w, tfs_object_is_private(obj));
		jw_key(&w, "uri");
		if (s->object_uri != NULL)
			jw_string(&w, s->object_uri);
		else
			jw_null(&w);
		if (s->object_uri_unknown != NULL) {
			jw_key(&w, "uri_unknown");
			jw_text(&w, s->object_uri_unknown);
		}
		jw_key(&w, "attributes");
		jw_array(&w);
		for (size_t k = 0; k < tfs_object_attr_count(obj); k++)
			write_attr(&w, tfs_object_attr(obj, k), &values[k]);
		jw_end_array(&w);
	}
	jw_end_object(&w);
	jw_flush(&w);
}

static json_object *opt_string(const char *s)
{
	return cli_json_string(s);
}

static void json_token_end(dump_sink *s, const tfs_token *tok, const dump_key *keys, size_t n)
{
	(void)tok;
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *k = json_object_new_object();
		json_object_object_add(k, "id", cli_json_string(keys[i].id));
		json_object_object_add(k, "summary", cli_json_string(keys[i].summary));
		json_object_object_add(k, "private", opt_string(keys[i].private_uuid));
		json_object_object_add(k, "public", opt_string(keys[i].public_uuid));
		json_object_object_add(k, "certificate", opt_string(keys[i].cert_uuid));
		json_object_array_add(arr, k);
	}
	fputs("],\"keys\":", s->out);
	emit(s->out, arr);
	fputs("}", s->out);
}

static void json_finish(dump_sink *s)
{
	fputs("\n]}\n", s->out);
}

void dump_json_init(dump_sink *s, FILE *out)
{
	*s = (dump_sink){
		.out = out,
		.first_token = true,
		.token_begin = json_token_begin,
		.object = json_object_cb,
		.token_end = json_token_end,
		.finish = json_finish,
	};
	fputs("{\"format_version\":1,\"command\":\"dump\",\"tokens\":[", out);
}
