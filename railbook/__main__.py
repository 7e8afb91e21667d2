from railbook.cli import main

main()
