/*
 * The built-in list of common and default PINs, tried first. Each entry is
 * here because it is a default or the example PIN of a tool or tutorial
 * people copy, or one of the most common numeric PINs:
 *
 *  - the example PINs of SoftHSM, OpenDNSSEC and pkcs11-tool set-up guides
 *    (OpenDNSSEC's sample conf.xml has <PIN>1234</PIN>; guides use 1234,
 *    0000, 123456, 12345678 for the user and 87654321 or 12345678 for
 *    the SO);
 *  - SmartCard-HSM / Nitrokey HSM defaults copied into SoftHSM set-ups:
 *    user PIN 648219, SO PIN 3537363231383830;
 *  - words and numbers HSM and PKCS#11 tutorials put on command lines and
 *    in configuration samples: 1111, 123456789, 1234567890, "password",
 *    "changeme", "changeit" (Java keystores), "secret", "userpin", "sopin",
 *    "softhsm";
 *  - the most common 4- and 6-digit PINs in published PIN-frequency
 *    studies (repeated and sequential digits, years): 1111, 2222, 1212,
 *    7777, 1004, 2000, 4444, 6969, 9999, 3333, 5555, 6666, 1122, 1313,
 *    8888, 4321, 2001, 1010, 111111, 000000, 654321, 121212, 666666,
 *    123123, 112233, 159753, 696969, 789456.
 *
 * Digit PINs of 4 to 6 digits recur in the digits spaces; trying them here
 * first costs a few milliseconds and finds the usual case at once.
 */
#include <stddef.h>

#include "audit/audit_internal.h"

const char *const audit_common_pins[] = {
	/* SoftHSM, OpenDNSSEC, pkcs11-tool, OpenSC */
	"1234", "0000", "123456", "12345678", "87654321", "00000000", "1111",
	"123456789", "1234567890", "0123456789", "11111111", "12341234",
	/* SmartCard-HSM / Nitrokey HSM defaults */
	"648219", "3537363231383830",
	/* words from tutorials */
	"password", "Password", "password1", "changeme", "changeit", "secret", "admin",
	"userpin", "sopin", "user-pin", "so-pin", "userpin1", "sopin1", "softhsm",
	"softhsm2", "SoftHSM", "opendnssec", "OpenDNSSEC", "test", "test1234", "testtest",
	"12345", "1234567", "pin1234", "qwerty", "abcd", "abc123", "hsm", "hsmpin",
	"token", "mytoken",
	/* frequent numeric PINs */
	"2222", "1212", "7777", "1004", "2000", "4444", "6969", "9999", "3333", "5555",
	"6666", "1122", "1313", "8888", "4321", "2001", "1010", "111111", "000000",
	"654321", "121212", "666666", "123123", "112233", "159753", "696969", "789456",
	"999999", "222222", "555555", "777777", "888888", "101010", "123321",
};

const size_t audit_common_pin_count = sizeof(audit_common_pins) / sizeof(audit_common_pins[0]);
