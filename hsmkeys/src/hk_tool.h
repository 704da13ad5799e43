/*
 * hk_tool.h - INTERNAL: the library's interface for its own tools
 * (hsmkeys-tool in provisioning/src).  Not installed, not part of the public
 * API or ABI (hk_* symbols are local to libhsmkeys.so: tools link the static
 * library), and it changes with the library, as p11-kit's common/ does.
 *
 * Owns nothing itself: it names the one place of each rule a tool must not
 * re-write, so that the CLI and the servers cannot drift apart:
 *   PKCS#11 modules, sessions, login and the CKR checkpoint   p11.h
 *     (every call as HK_FN(module, C_Fn)(...): counted, one function table;
 *      its CK_RV through hk_p11_check unless the code is tolerated, and then
 *      the reason is written at the call)
 *   URIs: parsing and building (p11-kit's formatting)         uri.h
 *   PINs from files and the terminal                          pin.h
 *   secret memory, wiping, constant-time compare              secret.h
 *   masters: attributes, policy, check values, templates      master.h
 *   durations ("1h30m", as the servers' epoch= and lifetime=) config.h
 *   epochs, the window, when a generation may be retired      schedule.h
 *   forward-erasable chain states (templates, steps, erasure)  chain.h
 * The provisioning CLI includes this header and no other of hsmkeys/src.
 */
#ifndef HSMKEYS_HK_TOOL_H
#define HSMKEYS_HK_TOOL_H

#include "error.h"
#include "secret.h"
#include "uri.h"
#include "pin.h"
#include "p11.h"
#include "master.h"
#include "config.h"
#include "schedule.h"
#include "chain.h"

#endif /* HSMKEYS_HK_TOOL_H */
