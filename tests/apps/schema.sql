-- tests/apps/schema.sql -- the schema of the applications in tests/apps (app.js, app.py), as an
-- ORM (Prisma) generates it: quoted CamelCase names, TEXT keys holding uuid text made by the
-- application, children pointing at "User"("id") ON DELETE CASCADE ON UPDATE CASCADE, a
-- composite index and a unique composite index that lead with "userId". psql -v users=N: N seed
-- users ("seed-N@t44.test", Clerk ids "user_seed_N"), each with two posts and a session.
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "clerkUserId" TEXT,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "User_clerkUserId_key" ON "User"("clerkUserId");
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

CREATE TABLE "Post" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "Post_userId_createdAt_idx" ON "Post"("userId", "createdAt");
CREATE UNIQUE INDEX "Post_userId_slug_key" ON "Post"("userId", "slug");
ALTER TABLE "Post" ADD CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id")
    ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "Session" (
    "id" TEXT NOT NULL,
    "userId" TEXT,
    "token" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Session_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "Session_userId_idx" ON "Session"("userId");
ALTER TABLE "Session" ADD CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id")
    ON DELETE CASCADE ON UPDATE CASCADE;

INSERT INTO "User" ("id", "clerkUserId", "email", "name", "updatedAt")
SELECT gen_random_uuid()::text, 'user_seed_' || i, 'seed-' || i || '@t44.test', 'seed ' || i, now()
FROM generate_series(1, :users) i;
INSERT INTO "Post" ("id", "userId", "slug", "title")
SELECT 'seed-post-' || s || '-' || u."email", u."id", 'p' || s, 'seed post ' || s FROM "User" u, generate_series(1, 2) s;
INSERT INTO "Session" ("id", "userId", "token", "expiresAt")
SELECT 'seed-session-' || u."email", u."id", md5(u."email"), now() + interval '1 day' FROM "User" u;
ANALYZE;
