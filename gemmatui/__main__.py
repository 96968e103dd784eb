from gemmatui.cli import main

raise SystemExit(main())
