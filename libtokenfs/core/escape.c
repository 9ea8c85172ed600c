/* The escaping rule of every renderer: see escape.h. */
#include "tokenfs/text.h"

#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0); /* C0, DEL, C1 */
}

/* The controls of the Unicode bidirectional algorithm that reorder text
 * after them ("Trojan Source", CVE-2021-42574), and the implicit marks. */
static bool is_bidi(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
	       cp == 0x200f || cp == 0x061c;
}

size_t tfs_escape(char *out, size_t size, const uint8_t *p, size_t n, tfs_escape_mode mode)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp = 0;
		size_t len = tfs_utf8_decode(p + i, n - i, &cp);
		char tmp[8];
		size_t k;
		if (len == 0 || (mode == TFS_ESC_TERMINAL && is_control(cp))) {
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
			len = 1;
		} else if (is_bidi(cp) || (mode == TFS_ESC_JSON && cp >= 0x7f && cp < 0xa0)) {
			/* JSON escapes C0 itself but passes DEL and C1 (0x9b is CSI
			 * on 8-bit terminals): those too become \uXXXX here. */
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", (unsigned)cp);
		} else {
			memcpy(tmp, p + i, len);
			k = len;
		}
		if (o + k + 1 > size)
			break;
		memcpy(out + o, tmp, k);
		o += k;
		i += len;
	}
	out[o] = '\0';
	return o;
}

bool tfs_text_is_plain(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = tfs_utf8_decode(p + i, n - i, &cp);
		if (len == 0 || is_control(cp))
			return false;
		i += len;
	}
	return true;
}

size_t tfs_text_cut(const uint8_t *p, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t cut = max;
	/* At most three continuation bytes back: beyond, it was not UTF-8. */
	for (size_t back = 0; back < 3 && cut > 0 && (p[cut] & 0xc0) == 0x80; back++)
		cut--;
	return (p[cut] & 0xc0) == 0x80 ? max : cut;
}
