from cliffaudit.cli import main

raise SystemExit(main())
