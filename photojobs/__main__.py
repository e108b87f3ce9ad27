from photojobs.commands import main

main()
