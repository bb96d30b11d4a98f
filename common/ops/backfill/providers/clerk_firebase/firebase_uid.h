/*
 * firebase_uid.h: new Firebase-style user ids: 28 characters of [A-Za-z0-9]
 * from libuuid's random generator (about 166 bits, as Firebase's own).
 */
#ifndef PHASEMIG_FIREBASE_UID_H
#define PHASEMIG_FIREBASE_UID_H

#define FIREBASE_UID_LENGTH 28

/* Fill out[FIREBASE_UID_LENGTH + 1]. */
void firebase_uid_generate(char *out);

#endif
