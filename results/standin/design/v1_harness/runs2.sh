SC='"background":"scene","clutter":"scene","lighting":"scene","occluder":"scene","scenes":30,"light_jitter":0.2'
python exp2.py '{"name":"A_same_kind","target":{'$SC'},"source":{'$SC'}}'
python exp2.py '{"name":"B_fam_diffkind","source_name":"src_diff","target":{'$SC',"families":20},"source":{'$SC',"namespace_shapes":["star","hexagon","crescent","ellipse","diamond","chevron"],"parts":[2,3],"bg_style":"blobs"}}'
python exp2.py '{"name":"C_indep_diffkind","source_name":"src_diff","target":{'$SC'},"source":{'$SC',"namespace_shapes":["star","hexagon","crescent","ellipse","diamond","chevron"],"parts":[2,3],"bg_style":"blobs"}}'
