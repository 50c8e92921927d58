from pingan.cli import main

raise SystemExit(main())
