from photojobs.commands import main

# Guarded: a worker child started with spawn or forkserver imports this module again.
if __name__ == "__main__":
    main()
