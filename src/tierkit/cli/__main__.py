from tierkit.cli import main

main()
