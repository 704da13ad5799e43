/*
 * pin.h - PINs from pin-source files or a terminal prompt.
 *
 * Owns: the checks on a PIN file (regular, not a symlink, owner, mode) and
 * the echo-off prompt.  Data: the PIN only ever lands in an hk_secret
 * (locked, not dumped, wiped on free).  Threat: a PIN readable by others or
 * left in a read buffer (see pin.c).  Layering: uses only the secret memory.
 */
#ifndef HSMKEYS_PIN_H
#define HSMKEYS_PIN_H

#include "error.h"
#include "secret.h"

/* Read a PIN file: refuses files that are not regular, that group or others
 * can read or write, or that are empty; strips one trailing newline.  The
 * PIN goes into locked memory; every temporary is wiped.
 * Returns HSMKEYS_OK, HSMKEYS_E_PIN, HSMKEYS_E_NOMEM. */
int hk_pin_read_file(const char *path, hk_secret *pin) HK_WARN_UNUSED;

/* Prompt on /dev/tty with echo off.  Returns HSMKEYS_OK, HSMKEYS_E_PIN. */
int hk_pin_prompt(const char *prompt, hk_secret *pin) HK_WARN_UNUSED;

#endif /* HSMKEYS_PIN_H */
