# tests/lib/clerk_digests.sh -- the digests of the password "password" in each of Clerk's forms
# (one per password_hasher phasemig maps, and two Firebase cannot verify), the SCRYPT signer key of
# their project, and hex_b64, which turns a hex digest into the base64 Firebase reads. Sourced by
# t46 (the files phase2 writes) and t47 (the same files through Firebase's Auth emulator).
BCRYPT='$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy'
SCRYPT_HASH='lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=='
SCRYPT_SALT='42xEC+ixf3L2lw=='
PBKDF2_256='pbkdf2_sha256$10000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=='
PBKDF2_256_TOO_MANY='pbkdf2_sha256$600000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=='
PBKDF2_1='pbkdf2_sha1$4096$saltsalt$0c60c80f961f0e71f3a9b524af6012062fe037a6'
MD5=5f4dcc3b5aa765d61d8327deb882cf99
SHA256=5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
ARGON2='$argon2id$v=19$m=65536,t=3,p=4$U0VDUkVURElHRVNU$SECRETDIGESThashpart'
PHPASS='$P$BSECRETDIGEST0123456789abcdefg'
SIGNER_KEY='jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=='
hex_b64() { printf %s "$1" | xxd -r -p | base64 -w0; }
