/*
 * faultmod.h - control API of the fault-injecting PKCS#11 module
 * (build/tests/libhsmkeys-faultmod.so), for tests.
 *
 * Load libhsmkeys through the module (config "module" = the .so path, env
 * HSMKEYS_FAULT_REAL_MODULE = the real module, default SoftHSM2).  A test in
 * the same process reaches these functions with faultctl_load() (faultctl.h);
 * another process uses the control file instead (HSMKEYS_FAULT_CONTROL, one
 * rule per line, re-read when it changes, replacing all rules):
 *
 *     C_Sign fail CKR_DEVICE_REMOVED          # every call until cleared
 *     C_Login fail 0x30 3                     # next 3 calls
 *     C_Sign fail CKR_DEVICE_ERROR 1 after 2  # the 3rd call from now
 *     C_CreateObject fail-late CKR_GENERAL_ERROR 1  # forward, then answer this
 *     C_Sign stall 2000 [count]               # hold the call 2 s, then forward
 *     * fail CKR_TOKEN_NOT_PRESENT            # every wrapped function
 *
 * With HSMKEYS_FAULT_COUNTS set (a path; "%p" becomes the pid) the module
 * rewrites that file after each call with "C_Name count" lines and a
 * "total N" line.
 *
 * Names: fn is a PKCS#11 function name ("C_Sign") or "*" for all.  A failing
 * C_Sign/C_SignUpdate/C_SignFinal also ends the real signing operation, as a
 * failed call does per PKCS#11 (so the session stays usable afterwards).
 */
#ifndef HSMKEYS_FAULTMOD_H
#define HSMKEYS_FAULTMOD_H

/* Fail the next `count` calls of fn (count < 0: until cleared) with rv,
 * after letting `skip` calls through.  Returns 0, or -1 for an unknown fn. */
int hkfault_fail(const char *fn, unsigned long rv, long count, long skip);
/* Forward the next `count` calls of fn (< 0: until cleared) to the real
 * module, then answer rv instead of its result: the token did the work but
 * reports an error (SoftHSM2's C_CreateObject does so when its second write
 * fails).  Returns 0, or -1 for an unknown fn. */
int hkfault_fail_late(const char *fn, unsigned long rv, long count);
/* Hold the next `count` calls of fn (< 0: until cleared) for ms
 * milliseconds or until hkfault_release(), then forward them. */
int hkfault_stall(const char *fn, unsigned ms, long count);
/* Drop every rule and wake stalled calls. */
void hkfault_clear(void);
/* Wake the calls stalled now (they proceed to the real module). */
void hkfault_release(void);
/* Calls of fn so far ("*": of all wrapped functions); 0 for unknown names. */
unsigned long hkfault_count(const char *fn);
/* Calls failed by injection so far. */
unsigned long hkfault_injected(void);
/* Calls being held by a stall rule right now. */
int hkfault_stalled_now(void);
void hkfault_reset_counts(void);

#endif
