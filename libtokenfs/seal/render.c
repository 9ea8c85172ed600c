/*
 * Attribute values as a check message shows them: named constants, text
 * when the bytes are text, hex otherwise, decrypted when encrypted, and
 * never key material or a PIN blob (those only as fingerprints).
 */
#include "seal/seal_internal.h"

#include <stdio.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "tokenfs/keys.h"
#include "tokenfs/names.h"

#define SHOW_TEXT 64 /* characters of a text value shown */
#define SHOW_HEX 32  /* bytes of a binary value shown */

static void render_bytes(tfs_seal_strbuf *b, const uint8_t *p, size_t n)
{
	bool text = true;
	for (size_t i = 0; i < n && text; i++)
		text = p[i] >= 0x20 && p[i] < 0x7f;
	if (n == 0) {
		tfs_seal_sb_add(b, "\"\"", 2);
	} else if (text) {
		size_t shown = n < SHOW_TEXT ? n : SHOW_TEXT;
		tfs_seal_sb_add(b, "\"", 1);
		for (size_t i = 0; i < shown; i++) {
			if (p[i] == '"' || p[i] == '\\')
				tfs_seal_sb_add(b, "\\", 1);
			tfs_seal_sb_add(b, (const char *)p + i, 1);
		}
		tfs_seal_sb_add(b, shown < n ? "...\"" : "\"", shown < n ? 4 : 1);
		if (shown < n)
			tfs_seal_sb_printf(b, " (%zu bytes)", n);
	} else {
		size_t shown = n < SHOW_HEX ? n : SHOW_HEX;
		char hex[2 * SHOW_HEX + 1];
		tfs_seal_hex(hex, p, shown);
		tfs_seal_sb_printf(b, "%s%s (%zu bytes)", hex, shown < n ? "..." : "", n);
	}
}

static void render_ulong(tfs_seal_strbuf *b, uint64_t type, uint64_t v)
{
	tfs_name_space ns;
	const char *name = tfs_name_space_of_attr(type, &ns) == 0 ? tfs_name(ns, v) : NULL;
	if (name != NULL)
		tfs_seal_sb_add(b, name, strlen(name));
	else if (type == TFS_CKA_OS_TOKENFLAGS || v > 0xffff)
		tfs_seal_sb_printf(b, "0x%llx", (unsigned long long)v);
	else
		tfs_seal_sb_printf(b, "%llu", (unsigned long long)v);
}

static void render_attr(tfs_seal_strbuf *b, const tfs_attr *a, bool encrypted,
                        const tfs_token_key *key)
{
	switch (tfs_attr_kind(a)) {
	case TFS_KIND_BOOL: {
		uint8_t raw = tfs_attr_bool_raw(a);
		tfs_seal_sb_printf(b, "%s", raw ? "true" : "false");
		if (raw != 0 && raw != 0xff)
			tfs_seal_sb_printf(b, " (stored as 0x%02x)", raw);
		return;
	}
	case TFS_KIND_ULONG:
		render_ulong(b, tfs_attr_type(a), tfs_attr_ulong(a));
		return;
	case TFS_KIND_BYTES: {
		size_t n;
		const uint8_t *p = tfs_attr_bytes(a, &n);
		if (!encrypted) {
			render_bytes(b, p, n);
			return;
		}
		uint8_t *pt = NULL;
		size_t pt_len = 0;
		tfs_layout layout;
		if (key == NULL) {
			tfs_seal_sb_printf(b, "<%zu bytes encrypted; a PIN shows the value>", n);
			return;
		}
		if (tfs_token_key_decrypt(key, &pt, &pt_len, &layout, p, n, NULL) != TFS_OK) {
			tfs_seal_sb_printf(b, "<%zu bytes of ciphertext that do not decrypt>", n);
			return;
		}
		render_bytes(b, pt, pt_len);
		tfs_secure_free(pt, pt_len);
		return;
	}
	case TFS_KIND_MAP:
		tfs_seal_sb_add(b, "{", 1);
		for (size_t i = 0; i < tfs_attr_map_count(a); i++) {
			const tfs_attr *e = tfs_attr_map_entry(a, i);
			char nb[24];
			const char *name = tfs_vattr_name(tfs_attr_type(e), nb);
			tfs_seal_sb_printf(b, "%s%s=", i ? ", " : "", name);
			size_t n = 0;
			const uint8_t *p = tfs_attr_kind(e) == TFS_KIND_BYTES ? tfs_attr_bytes(e, &n) : NULL;
			char fp[TFS_FINGERPRINT_LEN];
			/* A key value in a template is key material whatever the
			 * object's class: shown as a fingerprint only. */
			if (p != NULL && n > 0 && tfs_is_key_material(CKO_SECRET_KEY, tfs_attr_type(e)) &&
			    tfs_key_fingerprint(fp, UINT64_MAX, tfs_attr_type(e), p, n, NULL) == TFS_OK)
				tfs_seal_sb_printf(b, "<redacted key material, %s>", fp);
			else if (p != NULL && n > 0 && tfs_is_key_material(CKO_SECRET_KEY, tfs_attr_type(e)))
				tfs_seal_sb_printf(b, "<redacted key material>");
			else
				render_attr(b, e, false, key); /* map entries are never encrypted */
		}
		tfs_seal_sb_add(b, "}", 1);
		return;
	case TFS_KIND_MECHS:
		tfs_seal_sb_add(b, "{", 1);
		for (size_t i = 0; i < tfs_attr_mech_count(a); i++) {
			uint64_t m = tfs_attr_mech(a, i);
			const char *name = tfs_name(TFS_NS_CKM, m);
			if (name != NULL)
				tfs_seal_sb_printf(b, "%s%s", i ? ", " : "", name);
			else
				tfs_seal_sb_printf(b, "%s0x%llx", i ? ", " : "", (unsigned long long)m);
		}
		tfs_seal_sb_add(b, "}", 1);
		return;
	}
}

/* Key material whose stored bytes are at hand (diff): its length and
 * fingerprint, or with reveal the key itself. */
static void render_key_material(tfs_seal_strbuf *b, const tfs_seal_view *v,
                                const tfs_token_key *key)
{
	size_t n;
	const uint8_t *p = tfs_attr_bytes(v->a, &n);
	uint8_t *pt = NULL;
	size_t pt_len = 0;
	tfs_layout layout;
	if (v->encrypted) {
		if (key == NULL || tfs_token_key_decrypt(key, &pt, &pt_len, &layout, p, n, NULL) != TFS_OK) {
			tfs_seal_sb_printf(b, "<key material, %zu bytes encrypted%s>", n,
			                   key == NULL ? "" : " that do not decrypt");
			return;
		}
		p = pt;
		n = pt_len;
	}
	if (v->reveal)
		render_bytes(b, p, n);
	else
		tfs_seal_sb_printf(b, "<redacted key material, %zu bytes%s%s>", n,
		                   v->fingerprint ? ", " : "", v->fingerprint ? v->fingerprint : "");
	tfs_secure_free(pt, pt_len);
}

void tfs_seal_render(tfs_seal_strbuf *b, const tfs_seal_view *v, const tfs_token_key *key)
{
	if (v->redacted != NULL && strcmp(v->redacted, "pin-blob") == 0) {
		char hex[17] = "";
		if (v->sha256 != NULL)
			tfs_seal_hex(hex, v->sha256, 8);
		tfs_seal_sb_printf(b, "<PIN blob, sha256:%s>", hex);
	} else if (v->redacted != NULL && v->a != NULL && tfs_attr_kind(v->a) == TFS_KIND_BYTES) {
		render_key_material(b, v, key);
	} else if (v->redacted != NULL) {
		if (v->fingerprint != NULL)
			tfs_seal_sb_printf(b, "<redacted key material, %s>", v->fingerprint);
		else
			tfs_seal_sb_printf(b, "<redacted key material>");
	} else if (v->a == NULL) {
		tfs_seal_sb_printf(b, "(absent)");
	} else {
		render_attr(b, v->a, v->encrypted, key);
	}
}

void tfs_seal_render_flag_diff(tfs_seal_strbuf *b, uint64_t before, uint64_t after)
{
	uint64_t changed = before ^ after;
	bool first = true;
	for (int bit = 0; bit < 64; bit++) {
		uint64_t f = UINT64_C(1) << bit;
		if (!(changed & f))
			continue;
		const char *name = tfs_name(TFS_NS_CKF, f);
		char sign = (after & f) ? '+' : '-';
		if (name != NULL)
			tfs_seal_sb_printf(b, "%s%c%s", first ? "" : " ", sign, name);
		else
			tfs_seal_sb_printf(b, "%s%c0x%llx", first ? "" : " ", sign, (unsigned long long)f);
		first = false;
	}
}
