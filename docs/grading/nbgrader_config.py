"""nbgrader configuration for stn-course (docs/grading.md, "nbgrader"): copy it into your nbgrader course folder.

    course/
      nbgrader_config.py          # this file
      source/<assignment>/01_affine_transforms.ipynb   # from the course's solutions/ (built by `stn-course build`)

`nbgrader generate_assignment <assignment>` then releases exactly the course's lessons/ notebooks, and
`nbgrader autograde <assignment>` scores the exercises' check cells (a stub or a wrong answer scores 0: `check()` is
strict while NBGRADER_EXECUTION is set). The kernel that autogrades must import the `stn_course` package
(`pip install stn-course` in the grading environment).
"""
c = get_config()  # noqa: F821 – nbgrader provides get_config() when it loads this file

c.CourseDirectory.course_id = "stn-course"

# The course's stubs: `stn-course assign` writes these, so the release equals lessons/ byte for byte.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Cells tagged skip-when-grading (training runs, explorers) only demonstrate: the autograder does not run them.
c.Execute.skip_cells_with_tag = "skip-when-grading"
# Seconds per cell: every graded cell of the lessons runs in a few seconds on a 2-core CPU; the slow ones are the
# skipped cells above. A cell that still runs longer (a learner's endless loop) fails and costs its exercise only.
c.Execute.timeout = 120
