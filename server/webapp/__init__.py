"""The web app `canon serve` answers at `/`: catalog, metric pages, explorer, cross-sell and change review.

Plain HTML, CSS and JavaScript modules shipped in static/ (no build step, nothing from another origin);
routes.py serves them and the few JSON endpoints the pages need beyond the API.
"""
