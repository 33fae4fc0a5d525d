from kerasapps.cli import main

main()
