"""Partner organisations of the return cell: the services they offer and the parts of
Togo they cover (``domain.py``), kept by the ministry's coordinators (``http.py``)."""
