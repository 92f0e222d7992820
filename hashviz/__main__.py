from hashviz.cli import main

raise SystemExit(main())
