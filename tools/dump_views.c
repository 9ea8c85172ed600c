/*
 * How dump shows each byte string (dump.h): decrypted where it is
 * ciphertext and a PIN opened the token, redacted where it is key material,
 * text where it is a text attribute holding text, hex otherwise.
 *
 * Redaction goes by the attribute, never by CKA_PRIVATE: one flipped byte
 * makes a plaintext key look encrypted, and then its "ciphertext" is the key
 * itself. So key material (tfs_object_attr_is_key_material) is redacted
 * whether it decrypted, failed to, or was stored in the clear, and so is a
 * key-material entry of an attribute map (CKA_WRAP_TEMPLATE and the like).
 */
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "cli.h"
#include "dump.h"
#include "tokenfs/text.h"

bool dump_attr_is_text(uint64_t type)
{
	switch (type) {
	case CKA_LABEL:
	case CKA_APPLICATION:
	case CKA_URL:
	case CKA_START_DATE: /* CK_DATE: eight ASCII digits */
	case CKA_END_DATE:
	case TFS_CKA_OS_TOKENLABEL:
		return true;
	default:
		return false;
	}
}

static uint64_t ulong_or(const tfs_object *obj, uint64_t type, uint64_t fallback)
{
	const tfs_attr *a = tfs_object_find(obj, type);
	return a != NULL && tfs_attr_kind(a) == TFS_KIND_ULONG ? tfs_attr_ulong(a) : fallback;
}

/* Makes DER values, dates and moduli readable; bad DER keeps its hex and
 * gets a one-line reason. */
static void decode_value(dump_value *v, uint64_t type, uint64_t cls, uint64_t sub_type)
{
	tfs_error err;
	int rc = tfs_decode_attribute(&v->decoded, type, cls, sub_type, v->bytes, v->len, &err);
	if (rc == TFS_OK || rc == TFS_E_NOTFOUND)
		return;
	char buf[700];
	v->decode_error = strdup(tfs_error_format(&err, buf, sizeof(buf)));
}

/* Length and fingerprint instead of the value. A value that is still
 * ciphertext (or claims to be) gets a SHA-256 prefix of the stored bytes:
 * never a key check value, which would be the key's own if the "ciphertext"
 * is a plaintext key behind a flipped CKA_PRIVATE. */
static void redact(dump_value *v, uint64_t key_type, uint64_t attr_type)
{
	bool plain = !v->encrypted || v->decrypted;
	v->redacted = true;
	if (tfs_key_fingerprint(v->fingerprint, key_type, plain ? attr_type : UINT64_MAX, v->bytes,
	                        v->len, NULL) != TFS_OK)
		snprintf(v->fingerprint, sizeof(v->fingerprint), "(no fingerprint)");
}

/* Views of a map's entries: never encrypted; key material redacted by type
 * alone (a template names no class we could trust), text shown as text. */
static dump_value *map_views(const tfs_attr *map, uint64_t key_type, bool reveal)
{
	size_t n = tfs_attr_map_count(map);
	dump_value *views = calloc(n + 1, sizeof(*views));
	if (views == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const tfs_attr *e = tfs_attr_map_entry(map, i);
		if (tfs_attr_type(e) == CKA_KEY_TYPE && tfs_attr_kind(e) == TFS_KIND_ULONG)
			key_type = tfs_attr_ulong(e);
	}
	for (size_t i = 0; i < n; i++) {
		const tfs_attr *e = tfs_attr_map_entry(map, i);
		dump_value *v = &views[i];
		if (tfs_attr_kind(e) != TFS_KIND_BYTES)
			continue;
		v->bytes = tfs_attr_bytes(e, &v->len);
		uint64_t type = tfs_attr_type(e);
		if (!reveal && v->len > 0 && tfs_is_key_material(CKO_SECRET_KEY, type))
			redact(v, key_type, type);
		else
			v->text = dump_attr_is_text(type) && tfs_text_is_plain(v->bytes, v->len);
	}
	return views;
}

int dump_make_views(dump_value **out, const tfs_object *obj, const tfs_token_key *key,
                    bool reveal)
{
	int status = TFS_EXIT_OK;
	size_t count = tfs_object_attr_count(obj);
	dump_value *views = calloc(count + 1, sizeof(*views));
	*out = views;
	if (views == NULL)
		return TFS_EXIT_USAGE;
	uint64_t cls = ulong_or(obj, CKA_CLASS, UINT64_MAX);
	uint64_t key_type = ulong_or(obj, CKA_KEY_TYPE, UINT64_MAX);
	uint64_t cert_type = ulong_or(obj, CKA_CERTIFICATE_TYPE, UINT64_MAX);
	for (size_t k = 0; k < count; k++) {
		const tfs_attr *a = tfs_object_attr(obj, k);
		dump_value *v = &views[k];
		if (tfs_attr_kind(a) == TFS_KIND_MAP) {
			if ((v->entries = map_views(a, key_type, reveal)) == NULL)
				status = TFS_EXIT_USAGE;
			continue;
		}
		if (tfs_attr_kind(a) != TFS_KIND_BYTES)
			continue;
		v->bytes = tfs_attr_bytes(a, &v->len);
		v->encrypted = tfs_object_attr_encrypted(obj, a);
		if (v->encrypted && key != NULL) {
			uint8_t *pt;
			size_t n;
			tfs_error err;
			if (tfs_token_key_decrypt(key, &pt, &n, &v->layout, v->bytes, v->len, &err) == TFS_OK) {
				v->bytes = pt;
				v->len = n;
				v->decrypted = true;
			} else {
				const char *name = tfs_name(TFS_NS_CKA, tfs_attr_type(a));
				if (asprintf(&v->error_line, "offset %llu: value of %s does not decrypt: %s",
				             (unsigned long long)tfs_attr_value_offset(a),
				             name ? name : "attribute", err.what) < 0)
					v->error_line = NULL;
				v->error = "does not decrypt with the token key";
				status = TFS_EXIT_PROBLEM;
			}
		}
		bool plain = !v->encrypted || v->decrypted;
		if (!reveal && v->len > 0 && tfs_object_attr_is_key_material(obj, a)) {
			redact(v, key_type, tfs_attr_type(a));
		} else if (plain) {
			v->text = dump_attr_is_text(tfs_attr_type(a)) && tfs_text_is_plain(v->bytes, v->len);
			decode_value(v, tfs_attr_type(a), cls, cert_type != UINT64_MAX ? cert_type : key_type);
		}
	}
	return status;
}

void dump_report_views(const dump_value *views, const tfs_object *obj, const char *path)
{
	for (size_t k = 0; views != NULL && k < tfs_object_attr_count(obj); k++)
		if (views[k].error != NULL)
			cli_error("%s: %s", path, views[k].error_line != NULL ? views[k].error_line
			                                                     : views[k].error);
}

void dump_free_views(dump_value *views, const tfs_object *obj)
{
	if (views == NULL)
		return;
	for (size_t k = 0; k < tfs_object_attr_count(obj); k++) {
		if (views[k].decrypted)
			tfs_secure_free((void *)views[k].bytes, views[k].len);
		tfs_decoded_free(views[k].decoded);
		free(views[k].decode_error);
		free(views[k].error_line);
		free(views[k].entries);
	}
	free(views);
}
