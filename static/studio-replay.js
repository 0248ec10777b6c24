/* Process studio: replay a draft against past cases before deploying (studio/replay.py). */
